"""Learning modules: the texts, the library, assigning and releasing them, progress on them.

Who may see what, now, is answered by `familylink.services.access` (the gate); nothing here
keeps an access rule of its own.

Modules: `content` (rendering and sanitizing, content files and their translations, loading,
admin edits and versions), `library` (published modules, search, the text to show in a
language), `assignments` (who a therapist may assign to, assignment, the weekly sequence,
release, stopping), `progress` (the family member's readings and reflections, the
therapist's view of them), `practice` (the family member's practice tools, private unless
shared with one patient's therapist), `withdrawal` (what ended access does to a member's
rows: stopped or unshared, counted in one audit row). Callers outside the services use this
package's names; modules inside the services import the leaf module they need.
"""

from familylink.services.learning import practice
from familylink.services.learning.assignments import (
    WEEK,
    ReleaseReport,
    apply_sequence,
    assign_modules,
    consented_family,
    release_due,
    sequence_start,
    stop_assignments,
)
from familylink.services.learning.content import (
    ALLOWED_ATTRIBUTES,
    ALLOWED_TAGS,
    ALLOWED_URL_SCHEMES,
    CONTENT_DIR,
    REQUIRED_FIELDS,
    TRANSLATIONS,
    LoadReport,
    ModuleText,
    all_modules,
    check_module_text,
    content_files,
    load_modules,
    module_by_id,
    parse_module_file,
    parse_translation_file,
    reference_problems,
    render_markdown,
    restore_version,
    save_module,
    source_links,
)
from familylink.services.learning.library import (
    ModulePage,
    in_language,
    in_language_all,
    library,
    module_page,
    published_module,
)
from familylink.services.learning.progress import (
    MAX_REFLECTION,
    AssignedReading,
    FamilyProgress,
    Reading,
    ReadingRow,
    assigned_to,
    family_progress,
    open_module,
    progress_for,
    progress_of,
    reading,
    save_progress,
)

__all__ = [
    "ALLOWED_ATTRIBUTES",
    "ALLOWED_TAGS",
    "ALLOWED_URL_SCHEMES",
    "CONTENT_DIR",
    "MAX_REFLECTION",
    "REQUIRED_FIELDS",
    "TRANSLATIONS",
    "WEEK",
    "AssignedReading",
    "FamilyProgress",
    "LoadReport",
    "ModulePage",
    "ModuleText",
    "Reading",
    "ReadingRow",
    "ReleaseReport",
    "all_modules",
    "apply_sequence",
    "assign_modules",
    "assigned_to",
    "check_module_text",
    "consented_family",
    "content_files",
    "family_progress",
    "in_language",
    "in_language_all",
    "library",
    "load_modules",
    "module_by_id",
    "module_page",
    "open_module",
    "parse_module_file",
    "parse_translation_file",
    "practice",
    "progress_for",
    "progress_of",
    "published_module",
    "reading",
    "release_due",
    "reference_problems",
    "render_markdown",
    "restore_version",
    "save_module",
    "source_links",
    "save_progress",
    "sequence_start",
    "stop_assignments",
]
