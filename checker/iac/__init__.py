"""Table specs read from the template a team deploys with, beside `table_specs/*.json`.

`specs:` in the checklist (or `--specs`) may name a file instead of a directory: a CloudFormation
or SAM template (YAML with the short-form tags, or JSON; CDK's `cdk.out/*.template.json` is one)
or Terraform's `terraform show -json` output. Each table found is converted to the CreateTable
request a JSON spec would hold and validated by the same rules, errors naming the template and
the resource. Its spec name is the resource's logical id (Terraform: its address), the name the
checklist's bindings, items and permissions use in every environment; its live name is the one
the template gives for the environment (no prefix or suffix added), or, when CloudFormation
generates it, the stack's physical id (`environments.<env>.stack`).

Values checker cannot resolve (an import from another stack, an attribute of another resource)
are problems that name them, never guesses.
"""
from __future__ import annotations

from pathlib import Path

from .context import TemplateContext

__all__ = ["TemplateContext", "is_template", "load_table_specs", "template_specs", "unique_names"]


def is_template(path: Path) -> bool:
    """`specs:` names a file (a template), not a directory of specs."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def template_specs(path: Path, context: TemplateContext) -> tuple:
    """([TableSpec], [Problem]) of every table the template declares, for `context`."""
    from ..inputs import InputError, read_text
    from ..specs import Problem
    from .cloudformation import for_environment
    try:
        text = read_text(path)
    except InputError as exc:
        return [], [Problem(str(path), exc.where, exc.message)]
    from .terraform import is_terraform_json, terraform_specs
    if is_terraform_json(text):
        specs, problems = terraform_specs(path, text)
    else:
        from .cloudformation import cloudformation_specs
        specs, problems = cloudformation_specs(path, text, context)
    if not specs and not problems:     # as a specs directory without a spec: nothing would be checked
        problems = [Problem(str(path), "$", "declares no DynamoDB table (AWS::DynamoDB::Table, "
                                            "AWS::Serverless::SimpleTable, AWS::DynamoDB::GlobalTable, aws_dynamodb_table)"
                                            + for_environment(context))]
    return specs, problems


def load_table_specs(location: Path, context: TemplateContext) -> list:
    """The specs `specs:` names: a directory's JSON files, or a template's tables for `context`;
    SpecError listing every problem."""
    from ..specs import SpecError, load_specs
    if not is_template(location):
        return load_specs(location)
    specs, problems = template_specs(location, context)
    problems += unique_names(specs)
    if problems:
        raise SpecError(problems)
    return specs


def unique_names(specs: list) -> list:
    """Problems: two of a template's tables with one live name."""
    from ..specs import Problem
    seen: dict = {}
    problems = []
    for spec in specs:
        if spec.generated_name:
            continue
        name = spec.request["TableName"]
        if name in seen:
            problems.append(Problem(spec.file, f"$.Resources.{spec.logical_id}",
                                    f"table {name!r} is also the name of {seen[name]}"))
        seen[name] = spec.logical_id
    return problems


def function_owner(location: Path, context: TemplateContext, function_name: str) -> str:
    """"FILE (LOGICAL_ID)" of the template's function whose FunctionName is `function_name` in
    this environment, else "" (a Terraform document, or a function the template does not name)."""
    from ..inputs import read_text
    from .terraform import is_terraform_json
    text = read_text(location)
    if is_terraform_json(text):
        return ""
    from .cloudformation import Resolver, Unresolvable, template_document
    document = template_document(location, text, context)
    resolver = Resolver(document, context)
    for logical_id, resource in (document.get("Resources") or {}).items():
        if not isinstance(resource, dict) or resource.get("Type") != "AWS::Lambda::Function":
            continue
        try:
            name = resolver.value((resource.get("Properties") or {}).get("FunctionName"))
        except Unresolvable:
            continue
        if name == function_name:
            return f"{location} ({logical_id})"
    return ""
