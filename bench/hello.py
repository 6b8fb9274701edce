"""The ceiling: the smallest Flask app, served by the same gunicorn settings as FamilyLink."""

from flask import Flask

app = Flask(__name__)


@app.route("/")
def hello():
    return "Hello, world"
