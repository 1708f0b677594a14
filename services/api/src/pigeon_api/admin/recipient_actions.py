"""Pages that change a campaign's recipients: add one, import a CSV (bad rows listed by
line), delete one. The same commands and validation as the REST routes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import UploadFile

from pigeon_api.admin.campaign_pages import campaign_or_404
from pigeon_api.admin.deps import Admin, actor_of, uuid_or_404
from pigeon_api.admin.forms import FormErrors, attributes, parse_model, rule_errors, text
from pigeon_api.admin.templating import render
from pigeon_api.commands import recipients as commands
from pigeon_api.deps import Conn, Ctx
from pigeon_api.recipient_input import CsvFormatError, merge_list, read_csv
from pigeon_api.schemas.recipients import RecipientCreate
from pigeon_common.domain.access import Action
from pigeon_common.domain.errors import RuleError

router = APIRouter()


@router.post("/campaigns/{campaign_id}/recipients/add")
async def add_recipient(
    request: Request, state: Admin, ctx: Ctx, conn: Conn, campaign_id: str
) -> Response:
    loaded = await campaign_or_404(conn, state, campaign_id, Action.CAMPAIGN_EDIT)
    values = {
        "email": text(state.form, "email"),
        "name": text(state.form, "name"),
        "attributes": state.form.get("attributes", ""),
    }
    parsed = attributes(values["attributes"])
    errors = FormErrors()
    body = None
    if isinstance(parsed, str):
        errors.add("attributes", parsed)
    else:
        body, errors = parse_model(RecipientCreate, {**values, "attributes": parsed})
    if body is not None:
        merged = merge_list(loaded.c["id"], [(body.email, body.name, body.attributes)])
        try:
            await commands.add_recipients(ctx, conn, actor_of(state), loaded.c["id"], merged, "api")
        except RuleError as exc:
            if exc.kind not in ("invalid", "conflict"):
                raise
            errors = rule_errors(exc)
        else:
            return RedirectResponse(f"/admin/campaigns/{loaded.c['id']}/recipients", 303)
    return render(request, "recipient_add.html", 422, c=loaded.c, values=values, errors=errors)


@router.post("/campaigns/{campaign_id}/recipients/import")
async def import_recipients(
    request: Request, state: Admin, ctx: Ctx, conn: Conn, campaign_id: str
) -> Response:
    """The CSV of the form's `file` part; `skip` imports the good rows and lists the bad
    ones, else any bad row rejects the file (as the REST import's on_error)."""
    loaded = await campaign_or_404(conn, state, campaign_id, Action.CAMPAIGN_EDIT)
    actor = actor_of(state)
    await commands.editable_campaign(conn, actor, loaded.c["id"])
    upload = (await request.form()).get("file")
    skip = state.form.get("on_error") == "skip"
    context = {"c": loaded.c, "merged": None, "error": None, "imported": 0, "skip": skip}
    if not isinstance(upload, UploadFile):
        context["error"] = "Choose a CSV file."
        return render(request, "import.html", 422, **context)
    try:
        await upload.seek(0)
        merged = await read_csv(upload.file, loaded.c["id"])
    except CsvFormatError as exc:
        context["error"] = str(exc)
        return render(request, "import.html", 422, **context)
    context["merged"] = merged
    if merged.error_count and not skip:
        context["error"] = f"{merged.error_count} row(s) are invalid: nothing was imported."
        merged.close()
        return render(request, "import.html", 422, **context)
    await commands.add_recipients(ctx, conn, actor, loaded.c["id"], merged, "csv")
    context["imported"] = merged.imported
    return render(request, "import.html", **context)


@router.post("/campaigns/{campaign_id}/recipients/{recipient_id}/delete")
async def delete_recipient(
    request: Request, state: Admin, ctx: Ctx, conn: Conn, campaign_id: str, recipient_id: str
) -> Response:
    cid, rid = uuid_or_404(campaign_id), uuid_or_404(recipient_id)
    await commands.delete_recipient(ctx, conn, actor_of(state), cid, rid)
    return RedirectResponse(f"/admin/campaigns/{cid}/recipients", 303)
