"""Calendar files: `ics` builds .ics files (pure), `feeds` serves private feeds."""
