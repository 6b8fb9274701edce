"""Learning modules: the family library, therapists' assignments and progress, admin editing."""
