"""The property register as a flat file (one row per dwelling), through django-import-export.

Columns: organisation (slug), agency, residence_reference, residence_name, residence_address,
residence_postcode, residence_city, residence_priority_neighbourhood, building_reference,
entrance_reference, dwelling_reference, floor, door, type, surface_m2.

Import upserts by reference: a residence by (organisation, reference), a building by (residence,
reference), an entrance by (building, reference), a dwelling by (organisation, reference). The
library runs each row (validation, row-level errors, dry run in a rolled-back transaction, bulk
writes); the hierarchy above the dwellings is resolved in bulk before the rows, from the whole
file, so a 26,000-row register costs a few dozen queries rather than several per row.
"""

import csv
import io
import zipfile
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

import openpyxl
import tablib
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone
from import_export import fields, resources, widgets
from import_export.instance_loaders import BaseInstanceLoader

from .models import (
    REFERENCE_MAX_LENGTH,
    Agency,
    Building,
    Dwelling,
    DwellingType,
    Entrance,
    Organisation,
    Residence,
)

HIERARCHY_COLUMNS = (
    "organisation",
    "agency",
    "residence_reference",
    "residence_name",
    "residence_address",
    "residence_postcode",
    "residence_city",
    "residence_priority_neighbourhood",
    "building_reference",
    "entrance_reference",
)
DWELLING_COLUMNS = ("dwelling_reference", "floor", "door", "type", "surface_m2")
COLUMNS = HIERARCHY_COLUMNS + DWELLING_COLUMNS
REQUIRED_COLUMNS = frozenset(COLUMNS) - {
    "residence_address",
    "residence_postcode",
    "residence_city",
    "residence_priority_neighbourhood",
    "door",
    "type",
    "surface_m2",
}
RESIDENCE_COLUMNS = HIERARCHY_COLUMNS[:8]
RESIDENCE_CELLS = {
    "agency": ("agency", 200, True),
    "name": ("residence_name", 200, True),
    "address": ("residence_address", 300, False),
    "postcode": ("residence_postcode", 10, False),
    "city": ("residence_city", 100, False),
}
RESIDENCE_ATTRIBUTE_COLUMNS = {
    **{attribute: spec[0] for attribute, spec in RESIDENCE_CELLS.items()},
    "priority_neighbourhood": "residence_priority_neighbourhood",
}
PRELOAD_CHUNK = 5000
FIELD_COLUMNS = {"reference": "dwelling_reference", "surface": "surface_m2"}
UPDATED_FIELDS = ["entrance", "floor", "door", "type", "surface", "updated_at"]
COMPARED_FIELDS = (
    "organisation_id",
    "entrance_id",
    "reference",
    "floor",
    "door",
    "type",
    "surface",
)

DWELLING_TYPES = frozenset(DwellingType.values)
_TRUE = {"1", "true", "yes", "y", "oui", "o", "x", "vrai"}
_FALSE = {"", "0", "false", "no", "n", "non", "faux"}


def cell_text(value, *, max_length: int, required: bool = False) -> str:
    """A cell as text: spreadsheet numbers lose their ".0", blanks are "", lengths are checked."""
    if value is None:
        text = ""
    elif isinstance(value, float) and value.is_integer():
        text = str(int(value))
    else:
        text = str(value).strip()
    if required and not text:
        raise ValueError("Required.")
    if len(text) > max_length:
        raise ValueError(f"At most {max_length} characters.")
    return text


def cell_flag(value) -> bool:
    """Yes/no in the ways registers write it (1/0, true/false, oui/non, x)."""
    if isinstance(value, bool):
        return value
    text = cell_text(value, max_length=10).lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("Expected yes or no (1/0, oui/non).")


class TextWidget(widgets.Widget):
    """Text with a length limit, optionally required."""

    def __init__(self, *, max_length: int, required: bool = False):
        super().__init__()
        self.max_length, self.required = max_length, required

    def clean(self, value, row=None, **kwargs):
        return cell_text(value, max_length=self.max_length, required=self.required)

    def render(self, value, obj=None, **kwargs):
        return "" if value is None else str(value)


class FloorWidget(widgets.Widget):
    """A floor number, -5 to 99 (0: ground floor)."""

    def clean(self, value, row=None, **kwargs):
        text = cell_text(value, max_length=10, required=True)
        try:
            floor = int(Decimal(text))
        except (InvalidOperation, ValueError) as exc:
            raise ValueError("Expected a whole number.") from exc
        if Decimal(text) != floor or not -5 <= floor <= 99:
            raise ValueError("Expected a whole number from -5 to 99.")
        return floor

    def render(self, value, obj=None, **kwargs):
        return "" if value is None else value


class TypeWidget(widgets.Widget):
    """T1 to T6 (also "t3" or just "3"); blank when unknown."""

    def clean(self, value, row=None, **kwargs):
        text = cell_text(value, max_length=10).upper()
        if not text:
            return ""
        if text.isdigit():
            text = f"T{text}"
        if text not in DWELLING_TYPES:
            raise ValueError("Expected T1 to T6.")
        return text

    def render(self, value, obj=None, **kwargs):
        return value or ""


class SurfaceWidget(widgets.Widget):
    """Living area in m², with a decimal point or a French decimal comma; blank when unknown."""

    def clean(self, value, row=None, **kwargs):
        text = cell_text(value, max_length=20).replace(",", ".").replace(" ", "")
        if not text:
            return None
        try:
            surface = Decimal(text).quantize(Decimal("0.01"))
        except InvalidOperation as exc:
            raise ValueError("Expected a number of square metres.") from exc
        if not Decimal(1) <= surface <= Decimal(9999):
            raise ValueError("Expected 1 to 9999 m².")
        return surface

    def render(self, value, obj=None, **kwargs):
        return "" if value is None else str(value)


@dataclass
class RegisterPlan:
    """What the whole file says about the hierarchy, resolved to ids before the rows run."""

    row_errors: dict[int, dict[str, str]] = field(default_factory=dict)
    entrance_of_row: dict[int, tuple] = field(default_factory=dict)
    organisation_ids: dict[str, object] = field(default_factory=dict)
    dwellings: dict[tuple, Dwelling] = field(default_factory=dict)
    originals: dict[object, tuple] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    lines: list[int] = field(default_factory=list)
    keys: dict[int, tuple] = field(default_factory=dict)

    def error(self, row_number: int, column: str, message: str) -> None:
        self.row_errors.setdefault(row_number, {}).setdefault(column, message)

    def line(self, row_number: int) -> int:
        """Where a data row is in the file (the header is line 1)."""
        return self.lines[row_number - 1] if self.lines else row_number + 1


class RegisterInstanceLoader(BaseInstanceLoader):
    """Existing dwellings come from the plan's one preload, never one query per row."""

    def get_instance(self, row):
        plan = self.resource.plan
        organisation_id = plan.organisation_ids.get(
            cell_text(row.get("organisation"), max_length=50)
        )
        try:
            reference = cell_text(row.get("dwelling_reference"), max_length=REFERENCE_MAX_LENGTH)
        except ValueError:
            return None
        return plan.dwellings.get((organisation_id, reference))


INSERTED_COLUMNS = (
    "id",
    "created_at",
    "updated_at",
    "organisation_id",
    "entrance_id",
    "reference",
    "floor",
    "door",
    "type",
    "surface",
)


def insert_dwellings(dwellings: list[Dwelling]) -> None:
    """COPY on PostgreSQL (several times faster than INSERT for thousands of rows)."""
    if connection.vendor != "postgresql":
        Dwelling.objects.bulk_create(dwellings, batch_size=1000)
        return
    now = timezone.now()
    quote = connection.ops.quote_name
    statement = (
        f"COPY {quote(Dwelling._meta.db_table)} "
        f"({', '.join(quote(c) for c in INSERTED_COLUMNS)}) FROM STDIN"
    )
    with connection.cursor() as cursor, cursor.cursor.copy(statement) as copy:
        for dwelling in dwellings:
            dwelling.created_at = dwelling.updated_at = now
            copy.write_row([getattr(dwelling, column) for column in INSERTED_COLUMNS])
    for dwelling in dwellings:
        dwelling._state.adding = False


def update_dwellings(dwellings: list[Dwelling]) -> None:
    """UPDATE … FROM (VALUES …) on PostgreSQL; Django's bulk_update (CASE per row) elsewhere.

    bulk_update builds one CASE expression per row and field, which costs seconds per thousand
    rows; a joined VALUES list costs milliseconds.
    """
    if connection.vendor != "postgresql":
        Dwelling.objects.bulk_update(dwellings, UPDATED_FIELDS, batch_size=500)
        return
    quote = connection.ops.quote_name
    columns = ["id", "entrance_id", "floor", "door", "type", "surface", "updated_at"]
    casts = ["uuid", "uuid", "smallint", "varchar", "varchar", "numeric", "timestamptz"]
    row_sql = "(" + ", ".join(f"%s::{cast}" for cast in casts) + ")"
    assignments = ", ".join(f"{quote(c)} = v.{quote(c)}" for c in columns[1:])
    for start in range(0, len(dwellings), 1000):
        batch = dwellings[start : start + 1000]
        params = []
        for dwelling in batch:
            params.extend(
                [
                    dwelling.pk,
                    dwelling.entrance_id,
                    dwelling.floor,
                    dwelling.door,
                    dwelling.type,
                    dwelling.surface,
                    dwelling.updated_at,
                ]
            )
        # Only the model's own identifiers and placeholders are interpolated.
        sql = (
            f"UPDATE {quote(Dwelling._meta.db_table)} AS d SET {assignments} "  # noqa: S608
            f"FROM (VALUES {', '.join([row_sql] * len(batch))}) "
            f"AS v({', '.join(quote(c) for c in columns)}) WHERE d.id = v.id"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)


def _snapshot(dwelling: Dwelling) -> tuple:
    return tuple(getattr(dwelling, name) for name in COMPARED_FIELDS)


class EstateRegisterResource(resources.ModelResource):
    """One row per dwelling, with its residence, building and entrance."""

    organisation = fields.Field(column_name="organisation")
    agency = fields.Field(column_name="agency")
    residence_reference = fields.Field(column_name="residence_reference")
    residence_name = fields.Field(column_name="residence_name")
    residence_address = fields.Field(column_name="residence_address")
    residence_postcode = fields.Field(column_name="residence_postcode")
    residence_city = fields.Field(column_name="residence_city")
    residence_priority_neighbourhood = fields.Field(column_name="residence_priority_neighbourhood")
    building_reference = fields.Field(column_name="building_reference")
    entrance_reference = fields.Field(column_name="entrance_reference")
    reference = fields.Field(
        attribute="reference",
        column_name="dwelling_reference",
        widget=TextWidget(max_length=REFERENCE_MAX_LENGTH, required=True),
    )
    floor = fields.Field(attribute="floor", column_name="floor", widget=FloorWidget())
    door = fields.Field(attribute="door", column_name="door", widget=TextWidget(max_length=20))
    type = fields.Field(attribute="type", column_name="type", widget=TypeWidget())
    surface = fields.Field(attribute="surface", column_name="surface_m2", widget=SurfaceWidget())

    class Meta:
        model = Dwelling
        fields = (
            "organisation",
            "agency",
            "residence_reference",
            "residence_name",
            "residence_address",
            "residence_postcode",
            "residence_city",
            "residence_priority_neighbourhood",
            "building_reference",
            "entrance_reference",
            "reference",
            "floor",
            "door",
            "type",
            "surface",
        )
        import_id_fields = ("reference",)
        instance_loader_class = RegisterInstanceLoader
        use_bulk = True
        batch_size = 1000
        skip_unchanged = True
        skip_diff = True
        report_skipped = True
        clean_model_instances = False
        use_transactions = True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.plan = RegisterPlan()
        # The hierarchy columns are resolved once for the whole file in before_import(); per row
        # only the dwelling's own fields are read.
        self._dwelling_fields = [
            self.fields[name] for name in ("reference", "floor", "door", "type", "surface")
        ]

    def get_import_fields(self):
        return self._dwelling_fields

    def get_user_visible_fields(self):
        return [self.fields[name] for name in self._meta.fields]

    def get_diff_headers(self):
        return list(COLUMNS)

    # --- export ---------------------------------------------------------------------------------

    def get_queryset(self):
        return Dwelling.objects.select_related(
            "organisation", "entrance__building__residence__agency"
        ).order_by(
            "organisation__slug",
            "entrance__building__residence__reference",
            "entrance__building__reference",
            "entrance__reference",
            "reference",
        )

    def dehydrate_organisation(self, dwelling):
        return dwelling.organisation.slug

    def dehydrate_agency(self, dwelling):
        return dwelling.entrance.building.residence.agency.name

    def dehydrate_residence_reference(self, dwelling):
        return dwelling.entrance.building.residence.reference

    def dehydrate_residence_name(self, dwelling):
        return dwelling.entrance.building.residence.name

    def dehydrate_residence_address(self, dwelling):
        return dwelling.entrance.building.residence.address

    def dehydrate_residence_postcode(self, dwelling):
        return dwelling.entrance.building.residence.postcode

    def dehydrate_residence_city(self, dwelling):
        return dwelling.entrance.building.residence.city

    def dehydrate_residence_priority_neighbourhood(self, dwelling):
        return 1 if dwelling.entrance.building.residence.priority_neighbourhood else 0

    def dehydrate_building_reference(self, dwelling):
        return dwelling.entrance.building.reference

    def dehydrate_entrance_reference(self, dwelling):
        return dwelling.entrance.reference

    # --- import: the hierarchy, in bulk, before the rows --------------------------------------

    def before_import(self, dataset, **kwargs):
        missing = sorted(REQUIRED_COLUMNS - set(dataset.headers or ()))
        if missing:
            raise ValueError(f"Missing columns: {', '.join(missing)}.")
        plan = self.plan = RegisterPlan(lines=list(kwargs.get("line_numbers") or []))
        rows = [dict(zip(dataset.headers, values, strict=False)) for values in dataset]
        slugs = {cell_text(row.get("organisation"), max_length=50) for row in rows}
        plan.organisation_ids = dict(
            Organisation.objects.filter(slug__in=slugs).values_list("slug", "id")
        )
        residences = self._collect_residences(rows, plan)
        agency_ids = self._upsert_agencies(residences, plan)
        residence_ids = self._upsert_residences(residences, agency_ids, plan)
        self._upsert_buildings_and_entrances(residence_ids, plan)
        self._preload_dwellings(rows, plan)

    def _collect_residences(self, rows: list[dict], plan: RegisterPlan) -> dict:
        """(organisation id, reference) -> the residence's attributes, from its first row.

        Also records each valid row's place, (organisation, residence, building, entrance refs).
        """
        residences: dict[tuple, dict] = {}
        first_row: dict[tuple, int] = {}
        # Most rows repeat their residence's cells verbatim: check those cells once.
        checked: dict[tuple, tuple] = {}
        for number, row in enumerate(rows, 1):
            raw = tuple(row.get(column) for column in RESIDENCE_COLUMNS)
            if raw in checked:
                key, values = checked[raw]
            else:
                key, values = self._check_residence_cells(number, row, plan)
                if number not in plan.row_errors:
                    checked[raw] = (key, values)
            places = []
            for column in ("building_reference", "entrance_reference"):
                try:
                    places.append(
                        cell_text(row.get(column), max_length=REFERENCE_MAX_LENGTH, required=True)
                    )
                except ValueError as exc:
                    plan.error(number, column, str(exc))
            if number in plan.row_errors:
                continue
            plan.keys[number] = (*key, *places)
            if key not in residences:
                residences[key], first_row[key] = values, number
                continue
            for attribute, value in values.items():
                if residences[key][attribute] != value:
                    column = RESIDENCE_ATTRIBUTE_COLUMNS[attribute]
                    plan.error(number, column, f"Differs from line {plan.line(first_row[key])}.")
        return residences

    def _check_residence_cells(self, number: int, row: dict, plan: RegisterPlan):
        """The residence's key and attributes from one row's cells, or errors on that row."""
        slug = cell_text(row.get("organisation"), max_length=50)
        organisation_id = plan.organisation_ids.get(slug)
        if organisation_id is None:
            plan.error(number, "organisation", f"Unknown organisation “{slug}”.")
        values = {}
        for attribute, (column, max_length, required) in RESIDENCE_CELLS.items():
            try:
                values[attribute] = cell_text(
                    row.get(column), max_length=max_length, required=required
                )
            except ValueError as exc:
                plan.error(number, column, str(exc))
        try:
            values["priority_neighbourhood"] = cell_flag(
                row.get("residence_priority_neighbourhood")
            )
        except ValueError as exc:
            plan.error(number, "residence_priority_neighbourhood", str(exc))
        try:
            reference = cell_text(
                row.get("residence_reference"), max_length=REFERENCE_MAX_LENGTH, required=True
            )
        except ValueError as exc:
            plan.error(number, "residence_reference", str(exc))
            reference = ""
        return (organisation_id, reference), values

    def _upsert_agencies(self, residences: dict, plan: RegisterPlan) -> dict:
        wanted = {(org_id, values["agency"]) for (org_id, _), values in residences.items()}
        existing = {
            (a.organisation_id, a.name): a.id
            for a in Agency.objects.filter(
                organisation_id__in={org_id for org_id, _ in wanted},
                name__in={name for _, name in wanted},
            )
        }
        new = [
            Agency(organisation_id=org_id, name=name)
            for org_id, name in sorted(wanted - set(existing), key=str)
        ]
        Agency.objects.bulk_create(new)
        existing.update({(a.organisation_id, a.name): a.id for a in new})
        plan.counts["agencies_created"] = len(new)
        return existing

    def _upsert_residences(self, residences: dict, agency_ids: dict, plan: RegisterPlan) -> dict:
        existing = {
            (r.organisation_id, r.reference): r
            for r in Residence.objects.filter(
                organisation_id__in={org_id for org_id, _ in residences},
                reference__in={reference for _, reference in residences},
            )
        }
        created, changed = [], []
        for (org_id, reference), values in residences.items():
            attributes = {
                "agency_id": agency_ids[(org_id, values["agency"])],
                **{key: value for key, value in values.items() if key != "agency"},
            }
            residence = existing.get((org_id, reference))
            if residence is None:
                residence = Residence(organisation_id=org_id, reference=reference, **attributes)
                created.append(residence)
                existing[(org_id, reference)] = residence
            elif any(getattr(residence, key) != value for key, value in attributes.items()):
                for key, value in attributes.items():
                    setattr(residence, key, value)
                residence.updated_at = timezone.now()
                changed.append(residence)
        Residence.objects.bulk_create(created, batch_size=1000)
        Residence.objects.bulk_update(
            changed,
            [
                "agency",
                "name",
                "address",
                "postcode",
                "city",
                "priority_neighbourhood",
                "updated_at",
            ],
            batch_size=500,
        )
        plan.counts["residences_created"] = len(created)
        plan.counts["residences_updated"] = len(changed)
        return {key: residence.id for key, residence in existing.items()}

    def _upsert_buildings_and_entrances(self, residence_ids: dict, plan: RegisterPlan) -> None:
        """Create the missing buildings and entrances; record each valid row's entrance."""
        keys = plan.keys
        building_keys = {(residence_ids[(k[0], k[1])], k[2], k[0]) for k in keys.values()}
        buildings = {
            (b.residence_id, b.reference): b.id
            for b in Building.objects.filter(
                residence_id__in={rid for rid, _, _ in building_keys},
                reference__in={ref for _, ref, _ in building_keys},
            )
        }
        new_buildings = [
            Building(organisation_id=org_id, residence_id=rid, reference=ref)
            for rid, ref, org_id in sorted(building_keys, key=str)
            if (rid, ref) not in buildings
        ]
        Building.objects.bulk_create(new_buildings, batch_size=1000)
        buildings.update({(b.residence_id, b.reference): b.id for b in new_buildings})

        entrance_keys = {
            (buildings[(residence_ids[(k[0], k[1])], k[2])], k[3], k[0]) for k in keys.values()
        }
        entrances = {
            (e.building_id, e.reference): e.id
            for e in Entrance.objects.filter(
                building_id__in={bid for bid, _, _ in entrance_keys},
                reference__in={ref for _, ref, _ in entrance_keys},
            )
        }
        new_entrances = [
            Entrance(organisation_id=org_id, building_id=bid, reference=ref, label=f"Allée {ref}")
            for bid, ref, org_id in sorted(entrance_keys, key=str)
            if (bid, ref) not in entrances
        ]
        Entrance.objects.bulk_create(new_entrances, batch_size=1000)
        entrances.update({(e.building_id, e.reference): e.id for e in new_entrances})
        plan.counts["buildings_created"] = len(new_buildings)
        plan.counts["entrances_created"] = len(new_entrances)

        for number, key in keys.items():
            building_id = buildings[(residence_ids[(key[0], key[1])], key[2])]
            plan.entrance_of_row[number] = (key[0], entrances[(building_id, key[3])])

    def _preload_dwellings(self, rows: list[dict], plan: RegisterPlan) -> None:
        """Existing dwellings named in the file; a reference twice in the file is an error."""
        seen: dict[tuple, int] = {}
        for number, row in enumerate(rows, 1):
            org_id = plan.organisation_ids.get(cell_text(row.get("organisation"), max_length=50))
            try:
                reference = cell_text(
                    row.get("dwelling_reference"), max_length=REFERENCE_MAX_LENGTH, required=True
                )
            except ValueError:
                continue  # reported by the row's own field
            if (org_id, reference) in seen:
                plan.error(
                    number,
                    "dwelling_reference",
                    f"Also on line {plan.line(seen[(org_id, reference)])}.",
                )
            else:
                seen[(org_id, reference)] = number
        by_org: dict[object, list[str]] = {}
        for org_id, reference in seen:
            if org_id is not None:
                by_org.setdefault(org_id, []).append(reference)
        for org_id, references in by_org.items():
            for start in range(0, len(references), PRELOAD_CHUNK):
                chunk = references[start : start + PRELOAD_CHUNK]
                for dwelling in Dwelling.objects.filter(
                    organisation_id=org_id, reference__in=chunk
                ):
                    plan.dwellings[(org_id, dwelling.reference)] = dwelling
                    plan.originals[dwelling.pk] = _snapshot(dwelling)

    # --- import: each row ---------------------------------------------------------------------

    def import_instance(self, instance, row, **kwargs):
        """The row's own fields, its place in the hierarchy, and every problem found at once."""
        number = kwargs["row_number"]
        errors = dict(self.plan.row_errors.get(number, {}))
        try:
            super().import_instance(instance, row, **kwargs)
        except ValidationError as exc:
            for attribute, messages in exc.message_dict.items():
                errors.setdefault(FIELD_COLUMNS.get(attribute, attribute), " ".join(messages))
        if errors:
            raise ValidationError(errors)
        instance.organisation_id, instance.entrance_id = self.plan.entrance_of_row[number]

    def skip_row(self, instance, original, row, import_validation_errors=None):
        if import_validation_errors or instance.pk not in self.plan.originals:
            return False
        return self.plan.originals[instance.pk] == _snapshot(instance)

    def before_save_instance(self, instance, row, **kwargs):
        instance.updated_at = timezone.now()

    def bulk_create(self, using_transactions, dry_run, raise_errors, batch_size=None, result=None):
        """Insert the batch's new dwellings in one COPY."""
        if self.create_instances and (using_transactions or not dry_run):
            try:
                insert_dwellings(self.create_instances)
            except Exception as exc:  # noqa: BLE001 - reported as the batch's error, as the library does
                self.handle_import_error(result, exc, raise_errors)
            finally:
                self.create_instances.clear()

    def bulk_update(self, using_transactions, dry_run, raise_errors, batch_size=None, result=None):
        """Write the batch's changed dwellings (their own columns only) in one statement."""
        if self.update_instances and (using_transactions or not dry_run):
            try:
                update_dwellings(self.update_instances)
            except Exception as exc:  # noqa: BLE001 - reported as the batch's error, as the library does
                self.handle_import_error(result, exc, raise_errors)
            finally:
                self.update_instances.clear()

    def after_import(self, dataset, result, **kwargs):
        """Nothing to reset: primary keys are UUIDs, not sequences."""


# --- files ------------------------------------------------------------------------------------

FORMATS = ("csv", "xlsx")


class RegisterFileError(ValueError):
    """The file cannot be read as a register at all (not a row-level problem)."""


def _csv_rows(content: bytes) -> list[list]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = content.decode("cp1252", errors="replace")
    first_line = text.split("\n", 1)[0]
    # Spreadsheets set to French write CSV with semicolons.
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    return list(csv.reader(io.StringIO(text), delimiter=delimiter))


def _xlsx_rows(content: bytes) -> list[list]:
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except (zipfile.BadZipFile, OSError, KeyError, ValueError) as exc:
        raise RegisterFileError("Not a readable XLSX file.") from exc
    try:
        sheet = workbook.worksheets[0]
        return [list(row) for row in sheet.iter_rows(values_only=True)]
    finally:
        workbook.close()


def read_register_file(content: bytes, file_format: str) -> tuple[tablib.Dataset, list[int]]:
    """The file as a dataset with normalised headers, and each data row's line in the file."""
    if file_format not in FORMATS:
        raise RegisterFileError(f"Unknown format “{file_format}”: use csv or xlsx.")
    rows = _csv_rows(content) if file_format == "csv" else _xlsx_rows(content)
    if not rows:
        raise RegisterFileError("The file is empty.")
    headers = [cell_text(h, max_length=100).lower().replace(" ", "_") for h in rows[0]]
    while headers and not headers[-1]:
        headers.pop()
    missing = sorted(REQUIRED_COLUMNS - set(headers))
    if missing:
        raise RegisterFileError(f"Missing columns: {', '.join(missing)}.")
    dataset = tablib.Dataset(headers=headers)
    lines = []
    for line, values in enumerate(rows[1:], 2):
        values = list(values[: len(headers)]) + [None] * (len(headers) - len(values))
        if all(value is None or str(value).strip() == "" for value in values):
            continue
        dataset.append(values)
        lines.append(line)
    return dataset, lines


def export_register(queryset, file_format: str) -> bytes:
    """The register of these dwellings as CSV (UTF-8) or XLSX."""
    if file_format not in FORMATS:
        raise RegisterFileError(f"Unknown format “{file_format}”: use csv or xlsx.")
    dataset = EstateRegisterResource().export(queryset)
    data = dataset.export(file_format)
    return data.encode("utf-8") if isinstance(data, str) else data
