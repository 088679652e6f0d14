"""The checklist on its own: ${VAR} expansion, where values are needed, and the check registry."""
from __future__ import annotations

from checker.checklist import checklist_problems, expand_variables
from checker.checks import KIND_NAMES, KINDS, SMOKE_KINDS, sections_of


def test_expansion_replaces_every_reference_and_names_what_is_missing_or_empty():
    document = {"a": "x-${ONE}-${TWO}", "b": ["${THREE}", {"c": "${EMPTY}"}], "d": 3}
    expanded, problems = expand_variables(document, "f.yaml", environ={"ONE": "1", "TWO": "2", "EMPTY": ""})
    assert expanded == {"a": "x-1-2", "b": ["${THREE}", {"c": "${EMPTY}"}], "d": 3}
    assert [str(p) for p in problems] == ["f.yaml: $.b[0]: environment variable THREE is not set",
                                          "f.yaml: $.b[1].c: environment variable EMPTY is set but empty"]


def test_only_the_sections_and_environment_a_command_uses_need_values(tmp_path):
    path = tmp_path / "checklist.yaml"
    path.write_text("version: 1\nenvironments:\n  dev: {region: '${DEV_REGION}'}\n  prod: {region: '${PROD_REGION}'}\n"
                    "endpoints:\n  - {name: e, url: 'https://x/', headers: {Authorization: '${TOKEN}'}}\n")
    environ = {"DEV_REGION": "us-east-1"}
    checklist, problems = checklist_problems(path, environ=environ, sections=("environments", "tables"),
                                             environment="dev")
    assert problems == [] and checklist.environments["dev"].region == "us-east-1"
    _, problems = checklist_problems(path, environ=environ, sections=sections_of(KIND_NAMES), environment="dev")
    assert [p.path for p in problems] == ["$.endpoints[0].headers.Authorization"]
    _, problems = checklist_problems(path, environ=environ, sections=("environments",), environment="prod")
    assert [p.path for p in problems] == ["$.environments.prod.region"]


def test_the_registry_names_each_kind_once_with_its_section():
    assert len(set(KIND_NAMES)) == len(KINDS) and set(SMOKE_KINDS) <= set(KIND_NAMES)
    assert all(kind.help and kind.service and kind.section for kind in KINDS)
    assert sections_of(("bindings", "logs")) == ("environments", "tables", "lambda", "logs")
