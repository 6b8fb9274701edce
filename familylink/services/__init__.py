"""The domain rules. Plain functions: explicit inputs (actor, now), models out or a DomainError.

They never touch the request, flash messages or the signed-in user, and they flush but never
commit: the view or command that called them commits once.
"""
