"""Pure code that both dialogs/ and storage/ use: gettext, ROC dates, the township table,
business-number checksums, the vocabulary of cases and letters, and the records that cross the
repository (dialogs.repository). It imports none of the project's other packages.
"""
