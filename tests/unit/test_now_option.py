"""`--now`, taken by several commands, is one option type: a value far outside any sane range
(year 1 or 9999) is refused with a clear message, not a traceback."""

import pytest


@pytest.mark.parametrize(
    "args",
    [
        ["consent", "sweep"],
        ["learn", "release"],
        ["reminders", "send"],
        ["mail", "send"],
        ["account", "purge-tokens"],
    ],
)
@pytest.mark.parametrize("now", ["0001-01-01T00:00", "9999-12-31T23:59:59-05:00"])
def test_a_now_far_outside_any_sane_range_is_refused_clearly(app, runner, args, now):
    result = runner.invoke(args=[*args, "--now", now])
    assert result.exit_code == 2, result.output
    assert "use a date between 1900-01-01 and 2100-12-31" in result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)


def test_every_command_taking_now_shares_one_option_type(app):
    from familylink.cli import Instant

    def commands(group, path=()):
        for name, command in getattr(group, "commands", {}).items():
            yield (*path, name), command
            yield from commands(command, (*path, name))

    taking_now = {
        " ".join(path): param.type
        for path, command in commands(app.cli)
        for param in command.params
        if "--now" in param.opts
    }
    assert len(taking_now) >= 5
    assert all(isinstance(kind, Instant) for kind in taking_now.values()), taking_now
