"""Report sections as data: saved as a record, read back without parsing HTML, shown by the report."""

from __future__ import annotations

import base64

from augsens.plot.figures import png_bytes
from augsens.plot.sections import Section, find_sections


def _png(tmp_path):
    from matplotlib.figure import Figure

    path = tmp_path / "fig.png"
    path.write_bytes(png_bytes(Figure(figsize=(1, 1)), dpi=10))
    return path


def test_a_saved_section_reads_back_with_its_title_and_files(tmp_path):
    png = _png(tmp_path)
    csv = tmp_path / "table.csv"
    csv.write_text("a,b\n1,2\n")
    section = Section.from_files("demo", "A <title> & more", [csv, png], "What it shows.")
    record = section.save(tmp_path)
    assert record.name == "demo.section.json" and (tmp_path / "demo.section.html").read_text() == section.html
    back = Section.load(record)
    assert back.title == "A <title> & more" and back.name == "demo"
    assert back.files == (csv, png) and back.html == section.html
    assert base64.b64encode(png.read_bytes()).decode() in back.html


def test_the_record_names_the_section_not_its_heading(tmp_path):
    # the title is data: a record whose fragment has another heading keeps the record's title
    Section("Title from the record", "<h2>Heading in the HTML</h2>", "a").save(tmp_path)
    (tmp_path / "hand.section.html").write_text('<h2>Hand <i>written</i></h2><img src="fig.png">')
    _png(tmp_path)
    found = find_sections([tmp_path])
    assert [s.title for s in found] == ["Title from the record", "Hand written"]
    assert "data:image/png;base64," in found[1].html  # a fragment's relative image is embedded


def test_find_sections_can_stay_in_a_folder(tmp_path):
    Section("Top", "<p>top</p>", "top").save(tmp_path)
    Section("Deep", "<p>deep</p>", "deep").save(tmp_path / "sub")
    assert [s.title for s in find_sections([tmp_path], recursive=[False])] == ["Top"]
    assert sorted(s.title for s in find_sections([tmp_path])) == ["Deep", "Top"]
