"""The prompts: drafting a campaign from a brief, summarising a campaign's results."""

from __future__ import annotations

from mcp.server import MCPServer


def draft_campaign_text(brief: str, audience: str) -> str:
    return (
        "Draft an email campaign in MC Pigeon from this brief.\n\n"
        f"Brief: {brief}\n"
        f"Audience: {audience or 'the recipients of the campaign'}\n\n"
        "Steps:\n"
        "1. Read the pigeon://environment resource for the template variables and rules.\n"
        "2. Pick the mailbox with list_mailboxes (ask which one when there are several).\n"
        "3. Write a short subject and a Markdown body. Personalise with "
        "{{ recipient.name }} and recipient attributes, give defaults for attributes only "
        "some recipients have ({{ recipient.city|default('your town') }}), and use plain "
        "https links: tracking and the unsubscribe link are added for you.\n"
        "4. create_campaign with an idempotency_key, then dry_run and fix any template "
        "error it reports.\n"
        "5. Show the person the rendered subject and text of the first message. Do not "
        "send: send_campaign without confirm shows what a send would do; confirm only when "
        "the person says so."
    )


def summarise_campaign_text(campaign_id: str) -> str:
    return (
        f"Summarise the results of campaign {campaign_id} for the person who sent it.\n\n"
        f"Read pigeon://campaigns/{campaign_id}/report (or call campaign_status and "
        "campaign_stats). Say: how many were sent, failed, unknown or suppressed; how many "
        "people opened and clicked (the *_human counts: machine opens from proxies and "
        "scanners are not people) with open_rate and click_rate; which links were clicked "
        "most (list_links); hard and soft bounces, replies (list_replies) and "
        "unsubscribes. Point out anything that needs action: hard bounces, a high "
        "unsubscribe count, a campaign paused with a reason. Keep it short and give numbers."
    )


def register(server: MCPServer) -> None:
    @server.prompt(name="draft_campaign", title="Draft a campaign from a brief")
    def draft_campaign(brief: str, audience: str = "") -> str:
        """Draft a campaign (subject and Markdown body) from a brief, checked by a dry run,
        without sending it."""
        return draft_campaign_text(brief, audience)

    @server.prompt(name="summarise_campaign", title="Summarise a campaign's results")
    def summarise_campaign(campaign_id: str) -> str:
        """Summarise a campaign's results: outcomes, people's opens and clicks, links,
        bounces, replies and unsubscribes."""
        return summarise_campaign_text(campaign_id)
