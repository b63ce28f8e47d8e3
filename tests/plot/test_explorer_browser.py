"""The explorer in a real browser (headless Chromium through Selenium): it loads without console
errors, its controls change the map drawn, and its summary shows the results tree's numbers.

Needs Debian's ``chromium`` and ``chromium-driver`` (``make test`` installs them when run as root) and
``selenium`` (the ``dev`` extra).
"""

import shutil
from pathlib import Path

import pytest

from augsens.config import StudyConfig
from augsens.engine.study import Study
from augsens.plot.report import write_report
from augsens.results import open_results

webdriver = pytest.importorskip(
    "selenium.webdriver", reason="selenium is not installed (pip install -e '.[dev]')"
)
from selenium.webdriver.support.ui import Select  # noqa: E402

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
DRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("browser")
    cfg = StudyConfig.from_dict(
        {
            "model": {"name": "augsens.testing:tiny_cnn", "checkpoints": ["conv", "pool", "fc"]},
            "images": {"source": "bundled"},
            "study": {
                "kind": "sobol",
                "augmentations": ["hue", "hflip", "rotation"],
                "n": 16,
                "replicates": 2,
            },
            "run": {"batch_size": 64, "device": "cpu"},
        }
    )
    Study(cfg, progress=False).run(root / "sobol")
    return write_report(root)


@pytest.fixture(scope="module")
def browser():
    if BROWSER is None or DRIVER is None:
        pytest.skip(
            "no headless browser: install Chromium and its driver (Debian: apt-get install chromium "
            "chromium-driver; `make test` does this when run as root)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = BROWSER
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1200,900",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=DRIVER), options=options)
    yield driver
    driver.quit()


def _map_pixels(driver) -> str:
    return driver.execute_script("return document.getElementById('map').toDataURL()")


def _choose(driver, select_id: str, text: str) -> None:
    Select(driver.find_element("id", select_id)).select_by_visible_text(text)


def test_page_loads_without_console_errors(browser, page):
    browser.get(page.as_uri())
    assert browser.execute_script("return window.augsensExplorer && window.augsensExplorer.ready") is True
    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert errors == []
    # the depth profile was drawn: its canvas is not blank
    blank = browser.execute_script(
        "const c = document.querySelector('.profile canvas');"
        "const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        "return d.every((v) => v === 0);"
    )
    assert blank is False


def test_picking_checkpoint_factor_and_channel_changes_the_map(browser, page):
    browser.get(page.as_uri())
    _choose(browser, "sel-measure", "ST (total index)")
    _choose(browser, "sel-factor", "hue")
    key = browser.find_element("id", "map").get_attribute("data-key")
    before = _map_pixels(browser)
    _choose(browser, "sel-factor", "hflip")
    assert browser.find_element("id", "map").get_attribute("data-key") == key.replace("|hue|", "|hflip|")
    assert _map_pixels(browser) != before
    before = _map_pixels(browser)
    channel = Select(browser.find_element("id", "sel-channel"))
    other = next(o.text for o in channel.options if o.text != channel.first_selected_option.text)
    _choose(browser, "sel-channel", other)
    assert _map_pixels(browser) != before
    before = _map_pixels(browser)
    _choose(browser, "sel-checkpoint", "fc")
    assert "|fc|" in browser.find_element("id", "map").get_attribute("data-key")
    assert _map_pixels(browser) != before
    # the channel table follows the viewer: fc's 5 units, sorted by the chosen factor
    rows = browser.find_elements("css selector", "#channel-table tbody tr")
    assert len(rows) == 5
    values = [float(r.find_elements("tag name", "td")[2].text) for r in rows]  # column 2: hflip
    assert values == sorted(values, reverse=True)
    # hover shows a value
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(browser).move_to_element_with_offset(browser.find_element("id", "map"), 1, 1).perform()
    assert "fc · ST · hflip · unit" in browser.find_element("id", "map-readout").text


def test_summary_shows_the_results_numbers(browser, page):
    browser.get(page.as_uri())
    tree = open_results(page.parent / "sobol")
    spans = browser.find_elements("css selector", "#summary .num")
    assert len(spans) > 10
    for span in spans:
        a = {k: span.get_attribute(f"data-{k}") for k in ("checkpoint", "factor", "measure", "role")}
        var = f"{a['measure']}_conf_checkpoint" if a["role"] == "conf" else f"{a['measure']}_checkpoint"
        value = float(tree[a["checkpoint"]].dataset[var].sel(factor=a["factor"]))
        assert span.text == f"{value:.2f}", a
