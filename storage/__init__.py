"""The database side: models, migrations, queries, imports.

The models are loaded here, in one order, so that every table is registered on `Base.metadata`
whichever storage module is imported first.
"""
from storage import models  # noqa: F401  (Base, LineUser: the other models build on them)
from storage import letters, reminders, staff  # noqa: F401,E402
