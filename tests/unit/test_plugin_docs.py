"""Every plugin's documentation parses, as ansible-doc and ansible-lint read it.

ansible-lint reports an unparsable docstring as an error after a minute and a
half; this finds it in a second.
"""

import ast
from pathlib import Path

import pytest
import yaml
from ansible.parsing.plugin_docs import read_docstring

PLUGINS = Path(__file__).resolve().parents[2] / "collection" / "plugins"
DOCUMENTED = sorted(
    path
    for path in PLUGINS.glob("*/*.py")
    if path.parent.name not in ("plugin_utils", "doc_fragments")
    and "DOCUMENTATION" in path.read_text()
)
FRAGMENTS = sorted(PLUGINS.glob("doc_fragments/*.py"))


def test_the_collection_documents_its_plugins() -> None:
    assert len(DOCUMENTED) >= 5, DOCUMENTED


@pytest.mark.parametrize("path", DOCUMENTED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_documentation_parses(path: Path) -> None:
    docs = read_docstring(str(path))
    assert isinstance(docs["doc"], dict), f"{path}: DOCUMENTATION is not a YAML mapping"
    assert docs["doc"].get("short_description"), f"{path}: no short_description"


@pytest.mark.parametrize("path", FRAGMENTS, ids=lambda p: p.name)
def test_documentation_fragments_parse(path: Path) -> None:
    # A fragment's DOCUMENTATION is a class attribute, which read_docstring does not see.
    texts = [
        node.value.value
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "DOCUMENTATION" for t in node.targets)
        and isinstance(node.value, ast.Constant)
    ]
    assert texts, f"{path}: no DOCUMENTATION"
    for text in texts:
        assert isinstance(yaml.safe_load(text), dict), f"{path}: DOCUMENTATION is not a mapping"
