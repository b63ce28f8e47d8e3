"""The progress bar in a Jupyter kernel without ipywidgets: printed once, no warning per refresh."""

import builtins
import importlib.util
import warnings

from augsens.progress import forwards_bar


class ZMQInteractiveShell:  # the class name rich looks for to detect a Jupyter kernel
    pass


def test_bar_in_jupyter_without_ipywidgets(monkeypatch, capsys):
    assert importlib.util.find_spec("ipywidgets") is None  # the case this test covers
    monkeypatch.setattr(builtins, "get_ipython", lambda: ZMQInteractiveShell(), raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # rich's 'install "ipywidgets"' warning would fail the test
        with forwards_bar(True, total=10, label="study") as advance:
            for _ in range(5):
                advance(2)
    assert "10/10" in capsys.readouterr().out
