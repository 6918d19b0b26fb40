"""The staff console's forms, with WTForms (through Flask-WTF): fields, how they are cleaned, what they refuse.

Text holding control characters (NUL, escapes, lone surrogates) is refused, not cleaned, so the
staff member types it again (tabs and line breaks are ordinary text). Every refusal is a sentence
through gettext, said when the form is checked (so in the staff member's locale). The CSRF token is checked for every POST by the console's CSRFProtect, so
the forms do not check it a second time.
"""
from __future__ import annotations

from typing import Optional

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import Field, StringField, TextAreaField
from wtforms.validators import StopValidation, ValidationError

from common.text import FormTextRefused, form_text, has_unsafe
from dialogs.edition import CaseType, Edition, all_editions
from dialogs.i18n import _

TEXT_MAX = 200
LONG_MAX = 5000
PLANNED_MAX = 100_000


def _clean(value: Optional[str]) -> str:
    return (value or "").strip()


def _safe(form: FlaskForm, field: Field) -> None:
    """NUL, control characters, lone surrogates: refused where a person typed them (tabs and line breaks pass)."""
    if has_unsafe(field.data or ""):
        raise StopValidation(_("This holds invisible control characters (often pasted from another program). "
                               "Please type it again."))


def _required(form: FlaskForm, field: Field) -> None:
    if not field.data:
        raise StopValidation(_("Please fill this in."))


def _at_most(limit: int):
    def check(form: FlaskForm, field: Field) -> None:
        if len(field.data or "") > limit:
            raise StopValidation(_("At most {n} characters.").format(n=limit))
    return check


def _printed(form: FlaskForm, field: Field) -> None:
    """The case's part of 附件二 is printed: the owners' answers' normaliser (NFKC, spaces, no emoji), questions
    allowed (common.text.form_text)."""
    try:
        field.data = form_text(field.data or "", "")
    except FormTextRefused as refusal:
        raise StopValidation(refusal.message) from None


def _text(required: bool = False) -> StringField:
    return StringField(filters=[_clean], validators=[_safe] + ([_required] if required else []) + [
        _at_most(TEXT_MAX), _printed])


def _long() -> TextAreaField:
    return TextAreaField(filters=[_clean], validators=[_safe, _at_most(LONG_MAX)])


class CaseForm(FlaskForm):
    """A case (提案案件): its edition, type and theme, and its part of 附件二 二."""

    class Meta:
        csrf = False  # CSRFProtect checks every POST of the console

    edition = StringField(filters=[_clean], validators=[_safe])
    case_type = StringField(filters=[_clean], validators=[_safe])
    theme = StringField(filters=[_clean], validators=[_safe])
    proposer_name = _text(required=True)
    plan_name = _text(required=True)
    vendor_name = _text(required=True)
    solution_name = _text(required=True)
    solution_content = _long()
    sla = _long()
    period = _text()
    other_content = _long()
    integrated_service = _long()  # 數位共融輔導 only: 整合性服務項目與內容
    planned_count = StringField(filters=[lambda value: _clean(value) or "0"], validators=[_safe], default="0")

    TEXT_FIELDS = ("proposer_name", "plan_name", "vendor_name", "solution_name", "solution_content", "sla", "period",
                   "other_content", "integrated_service")

    def chosen_edition(self) -> Optional[Edition]:
        year = self.edition.data or ""
        return next((e for e in all_editions() if year.isdigit() and e.year == int(year)), None)

    def chosen_case_type(self) -> Optional[CaseType]:
        edition = self.chosen_edition()
        return edition.case_types.get(self.case_type.data or "") if edition else None

    def validate_edition(self, field: Field) -> None:
        if self.chosen_edition() is None:
            raise ValidationError(_("Please choose an edition."))

    def validate_case_type(self, field: Field) -> None:
        if self.chosen_edition() is not None and self.chosen_case_type() is None:
            raise ValidationError(_("Please choose a case type."))

    def validate_theme(self, field: Field) -> None:
        kind = self.chosen_case_type()
        if kind is not None and not kind.themes:
            field.data = ""  # 數位普及輔導 has no themes: whatever was sent is dropped
        elif field.data and (kind is None or kind.theme(field.data) is None):
            raise ValidationError(_("This theme does not belong to the case type."))

    def validate_planned_count(self, field: Field) -> None:
        if not (field.data or "").isdigit() or int(field.data) > PLANNED_MAX:
            raise ValidationError(_("Please type a whole number from 0 to 100000."))

    def values(self) -> dict[str, str]:
        """What the form shows again (as typed, cleaned)."""
        return {name: self[name].data or "" for name in self.TEXT_FIELDS + ("edition", "case_type", "theme",
                                                                               "planned_count")}

    def errors_by_field(self) -> dict[str, str]:
        """The first refusal of each field."""
        return {name: messages[0] for name, messages in self.errors.items() if messages}

    def columns(self) -> dict[str, object]:
        """The case's columns, for a valid form."""
        columns: dict[str, object] = {name: self[name].data or "" for name in self.TEXT_FIELDS}
        columns.update(edition=int(self.edition.data), case_type=self.case_type.data, theme=self.theme.data or None,
                       planned_count=int(self.planned_count.data))
        return columns


class ImportForm(FlaskForm):
    """A file to import (CSV or XLSX) and what it holds."""

    class Meta:
        csrf = False  # CSRFProtect checks every POST of the console

    kind = StringField(filters=[_clean])
    file = FileField()

    def __init__(self, kinds: tuple[str, ...], *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.kinds = kinds

    def validate_kind(self, field: Field) -> None:
        if field.data not in self.kinds:
            raise StopValidation(_("Please choose what the file holds."))

    def validate_file(self, field: Field) -> None:
        if field.data is None or not getattr(field.data, "filename", ""):
            raise StopValidation(_("Please choose a CSV or XLSX file."))

    def first_error(self) -> str:
        return next((messages[0] for messages in self.errors.values() if messages), "")
