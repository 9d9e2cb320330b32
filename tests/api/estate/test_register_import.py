"""Import and export of the property register: dry run, row-level errors, idempotent upsert."""

import csv
import io
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from api.estate.models import Building, Dwelling, Entrance, EstateEvent, Residence
from api.estate.resources import COLUMNS, EstateRegisterResource, export_register
from api.estate.services import estate_register_import
from tests.factories import OrganisationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def organisation():
    return OrganisationFactory(slug="habitat93", name="Habitat 93")


def row(**overrides) -> dict:
    values = {
        "organisation": "habitat93",
        "agency": "Agence Nord",
        "residence_reference": "R01",
        "residence_name": "Les Lilas",
        "residence_address": "3 rue des Lilas",
        "residence_postcode": "93200",
        "residence_city": "Saint-Denis",
        "residence_priority_neighbourhood": "oui",
        "building_reference": "A",
        "entrance_reference": "1",
        "dwelling_reference": "L0001",
        "floor": "0",
        "door": "01",
        "type": "T3",
        "surface_m2": "64.5",
    }
    values.update(overrides)
    return values


def to_csv(rows: list[dict], delimiter: str = ",") -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, delimiter=delimiter)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def register(count: int = 4) -> list[dict]:
    return [
        row(
            dwelling_reference=f"L{n:04d}",
            building_reference="A" if n < 2 else "B",
            entrance_reference=str(n % 2 + 1),
            floor=str(n),
            door=f"{n}1",
        )
        for n in range(count)
    ]


def test_import_creates_the_hierarchy_then_reimport_changes_nothing(organisation):
    content = to_csv(register())
    report = estate_register_import(content=content, file_format="csv")
    assert report.ok, report.problems
    assert report.totals["new"] == 4
    assert report.hierarchy == {
        "agencies_created": 1,
        "residences_created": 1,
        "residences_updated": 0,
        "buildings_created": 2,
        "entrances_created": 4,
    }
    residence = Residence.objects.get(organisation=organisation, reference="R01")
    assert residence.priority_neighbourhood is True
    assert residence.agency.name == "Agence Nord"
    assert Entrance.objects.filter(building__residence=residence).count() == 4
    dwelling = Dwelling.objects.get(reference="L0003")
    assert (dwelling.floor, dwelling.door, dwelling.type, dwelling.surface) == (
        3,
        "31",
        "T3",
        Decimal("64.50"),
    )
    assert dwelling.entrance.building.reference == "B"
    assert EstateEvent.objects.filter(kind="imported", organisation=organisation).count() == 1

    again = estate_register_import(content=content, file_format="csv")
    assert again.totals["skip"] == 4
    assert again.totals["new"] == again.totals["update"] == 0
    assert set(again.hierarchy.values()) == {0}
    assert Dwelling.objects.count() == 4


def test_changed_rows_are_updated_in_place(organisation):
    estate_register_import(content=to_csv(register()), file_format="csv")
    ids = dict(Dwelling.objects.values_list("reference", "id"))
    rows = register()
    rows[1].update(surface_m2="70,25", type="4", entrance_reference="9")
    rows[2].update(residence_name="Les Lilas (rénovée)")
    for item in rows:
        item["residence_name"] = "Les Lilas (rénovée)"
    report = estate_register_import(content=to_csv(rows), file_format="csv")
    assert report.ok, report.problems
    assert (report.totals["update"], report.totals["skip"]) == (1, 3)
    assert report.hierarchy["residences_updated"] == 1
    assert report.hierarchy["entrances_created"] == 1
    moved = Dwelling.objects.get(reference="L0001")
    assert moved.pk == ids["L0001"], "upsert keeps the dwelling (and what points to it)"
    assert (moved.type, moved.surface, moved.entrance.reference) == ("T4", Decimal("70.25"), "9")
    assert Residence.objects.get().name == "Les Lilas (rénovée)"


def test_dry_run_reports_but_writes_nothing(organisation):
    report = estate_register_import(content=to_csv(register()), file_format="csv", dry_run=True)
    assert report.ok
    assert report.totals["new"] == 4
    assert not report.applied
    assert not Dwelling.objects.exists()
    assert not Building.objects.exists()
    assert not EstateEvent.objects.exists()


def test_row_level_errors_are_reported_by_line_and_nothing_is_written(organisation):
    rows = [
        *register(2),
        row(dwelling_reference="L0100", type="T9", floor="deux", surface_m2="0"),
        row(dwelling_reference="L0000"),
        row(dwelling_reference="L0101", organisation="nobody"),
        row(dwelling_reference="L0102", residence_name="Autre nom"),
        row(dwelling_reference="", building_reference=""),
        row(dwelling_reference="L0103", residence_priority_neighbourhood="peut-être"),
    ]
    report = estate_register_import(content=to_csv(rows), file_format="csv", dry_run=True)
    assert not report.ok
    assert report.problems == [
        (4, "floor", "Expected a whole number."),
        (4, "surface_m2", "Expected 1 to 9999 m²."),
        (4, "type", "Expected T1 to T6."),
        (5, "dwelling_reference", "Also on line 2."),
        (6, "organisation", "Unknown organisation “nobody”."),
        (7, "residence_name", "Differs from line 2."),
        (8, "building_reference", "Required."),
        (8, "dwelling_reference", "Required."),
        (9, "residence_priority_neighbourhood", "Expected yes or no (1/0, oui/non)."),
    ]
    real = estate_register_import(content=to_csv(rows), file_format="csv")
    assert not real.applied
    assert not Dwelling.objects.exists(), "all or nothing"
    assert not Residence.objects.exists()


def test_unreadable_files(organisation):
    missing = to_csv(register()).replace(b"surface_m2", b"surface").replace(b"floor", b"etage")
    report = estate_register_import(content=missing, file_format="csv")
    assert report.problems == [(None, "file", "Missing columns: floor.")]
    assert estate_register_import(content=b"", file_format="csv").problems
    assert estate_register_import(content=b"not a zip", file_format="xlsx").problems
    assert estate_register_import(content=b"x", file_format="ods").problems


def test_french_spreadsheet_csv(organisation):
    content = b"\xef\xbb\xbf" + to_csv(register(), delimiter=";").replace(b"64.5", b"64,5")
    report = estate_register_import(content=content, file_format="csv")
    assert report.ok, report.problems
    assert Dwelling.objects.filter(surface=Decimal("64.50")).count() == 4


def test_blank_lines_are_ignored_and_lines_stay_right(organisation):
    text = to_csv(register(2)).decode() + "\n,,,,,,,,,,,,,,\n"
    text += to_csv([row(dwelling_reference="L0009", type="T0")]).decode().split("\n", 1)[1]
    report = estate_register_import(content=text.encode(), file_format="csv")
    assert report.problems == [(6, "type", "Expected T1 to T6.")]


def test_export_then_import_round_trips_in_csv_and_xlsx(organisation):
    estate_register_import(content=to_csv(register()), file_format="csv")
    queryset = EstateRegisterResource().get_queryset().filter(organisation=organisation)

    exported = export_register(queryset, "csv").decode()
    lines = exported.strip().splitlines()
    assert lines[0].split(",") == list(COLUMNS)
    assert lines[1] == (
        "habitat93,Agence Nord,R01,Les Lilas,3 rue des Lilas,93200,Saint-Denis,1,A,1,"
        "L0000,0,01,T3,64.50"
    )
    assert estate_register_import(content=exported.encode(), file_format="csv").totals["skip"] == 4

    workbook = export_register(queryset, "xlsx")
    report = estate_register_import(content=workbook, file_format="xlsx")
    assert report.ok, report.problems
    assert report.totals["skip"] == 4


def test_commands(organisation, tmp_path, capsys):
    source = tmp_path / "register.csv"
    source.write_bytes(to_csv(register()))
    call_command("import_estate", str(source), "--dry-run")
    assert "4 new" in capsys.readouterr().out
    assert not Dwelling.objects.exists()

    call_command("import_estate", str(source))
    assert Dwelling.objects.count() == 4

    bad = tmp_path / "bad.csv"
    bad.write_bytes(to_csv([row(type="T7")]))
    with pytest.raises(CommandError, match="nothing was written"):
        call_command("import_estate", str(bad))
    assert "line 2: type: Expected T1 to T6." in capsys.readouterr().err

    exported = tmp_path / "export.xlsx"
    call_command("export_estate", "--organisation", "habitat93", "--output", str(exported))
    assert exported.stat().st_size > 0
    call_command("export_estate", "--organisation", "habitat93")
    assert capsys.readouterr().out.count("\n") >= 5
    with pytest.raises(CommandError):
        call_command("export_estate", "--organisation", "nobody")
