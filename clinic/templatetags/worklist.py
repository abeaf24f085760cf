"""The navigation's worklist badge: how many items are overdue or unacknowledged (one small set of
queries, worklist_counts); nothing when there are none."""
from django import template

register = template.Library()


@register.inclusion_tag("_worklist_badge.html", takes_context=True)
def worklist_badge(context):
    request = context.get("request")
    count = 0
    if request is not None and request.user.is_authenticated:
        from clinic.audit import actor_from_request
        from referrals.worklist import worklist_counts

        counts = worklist_counts(actor=actor_from_request(request, channel="web"))
        count = counts["overdue"] + counts["unacknowledged"]
    return {"count": count}
