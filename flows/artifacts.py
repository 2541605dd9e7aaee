"""The run summary as Prefect artifacts: one Markdown overview plus tables a rev-ops person can scan."""

from __future__ import annotations

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from flows.reports import markdown_table
from flows.steps import SyncSummary


def summary_markdown(summary: SyncSummary) -> str:
    title = f"# leadloop {summary.kind}{' (dry run: nothing written)' if summary.dry_run else ''}"
    lines = [
        title, "",
        f"Model version `{summary.model_version}` · {summary.seconds:.1f} s · run `{summary.run_id}`", "",
        markdown_table(["what", "count"], [
            ["records pulled", summary.records_pulled], ["people scored", summary.people_scored],
            ["accounts scored", summary.accounts_scored],
            ["tier changes", sum(summary.tier_changes.values())],
            ["fields written", summary.fields_written], ["tasks created", summary.tasks_created],
            ["rejected by the CRM", summary.rejections],
        ]), "",
        "## People per tier", "", markdown_table(["tier", "people"], summary.tier_counts.items()),
    ]
    if summary.tier_changes:
        lines += ["", "## Tier changes", "", markdown_table(["move", "people"], summary.tier_changes.items())]
    if summary.suppressions:
        lines += ["", "## Suppressed", "", markdown_table(["why", "people"], summary.suppressions.items())]
    if summary.tasks_by_owner:
        verb = "would get" if summary.dry_run else "got"
        lines += ["", f"## New tasks by rep ({verb})", "",
                  markdown_table(["rep", "tasks"], summary.tasks_by_owner.items())]
    calls = [[crm, endpoint, n] for crm, by in summary.api_calls.items() for endpoint, n in by.items()]
    if calls:
        lines += ["", "## API calls", "", markdown_table(["CRM", "endpoint", "calls"], calls)]
    rejected = [r for w in summary.writes for r in w.rejections]
    if rejected:
        lines += ["", "## Rejected by the CRM (retried next run)", ""] + [f"- {r}" for r in rejected[:50]]
    return "\n".join(lines)


def publish(summary: SyncSummary) -> None:
    """Create the artifacts of one run (inside a flow run)."""
    key = summary.kind.replace("_", "-")
    create_markdown_artifact(summary_markdown(summary), key=f"{key}-summary",
                             description=f"leadloop {summary.kind} summary")
    create_table_artifact(
        [{"crm": p.crm, "stream": p.stream, "records": p.records, "deleted": p.deleted,
          "rejected": p.rejected, "pages": p.pages} for p in summary.pulls] or [{"crm": "", "stream": ""}],
        key=f"{key}-pulls", description="records pulled per stream",
    )
    if summary.dry_run:
        create_table_artifact(summary.changes or [{"crm": "", "record": "", "field": "nothing would change"}],
                              key=f"{key}-would-change",
                              description="every field (old → new) and task a real run would write")
