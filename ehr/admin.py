from django.contrib import admin
from django.db.models import Count, Q
from django.http import HttpResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from clinic.admin import ClinicScoped, scoped
from ehr.models import CardFeedback, EhrClient, IssuedCard


@admin.register(EhrClient)
class EhrClientAdmin(ClinicScoped, admin.ModelAdmin):
    list_display = ["name", "issuer", "client_id", "clinic", "jwks_url", "active"]
    list_filter = ["active", ("clinic", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name", "issuer", "client_id"]


@admin.register(IssuedCard)
class IssuedCardAdmin(ClinicScoped, admin.ModelAdmin):
    list_display = ["issued_at", "service", "rule", "summary", "client"]
    list_filter = ["service", ("client", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["rule", "summary", "uuid"]
    readonly_fields = ["uuid", "service", "rule", "summary", "client", "issued_at"]

    def has_add_permission(self, request):
        return False


def acceptance_by_rule(queryset=None, issued_cards=None) -> list[dict]:
    """Per service and rule: cards issued, feedback received, accepted, overridden, acceptance rate (of the
    feedback in `queryset` and the cards in `issued_cards`, all of them unless given)."""
    issued = {
        (row["service"], row["rule"]): row["n"]
        for row in (issued_cards if issued_cards is not None else IssuedCard.objects.all())
        .values("service", "rule")
        .annotate(n=Count("id"))
    }
    rows = []
    feedback = (
        (queryset if queryset is not None else CardFeedback.objects.all())
        .values("service", "rule")
        .annotate(
            accepted=Count("id", filter=Q(outcome="accepted")), overridden=Count("id", filter=Q(outcome="overridden"))
        )
    )
    seen = set()
    for row in feedback:
        key = (row["service"], row["rule"])
        seen.add(key)
        answered = row["accepted"] + row["overridden"]
        rows.append(
            {
                **row,
                "issued": issued.get(key, 0),
                "answered": answered,
                "rate": row["accepted"] / answered if answered else None,
            }
        )
    rows += [
        {"service": service, "rule": rule, "accepted": 0, "overridden": 0, "issued": count, "answered": 0, "rate": None}
        for (service, rule), count in issued.items()
        if (service, rule) not in seen
    ]
    rows.sort(key=lambda row: (row["service"], row["rule"]))
    return rows


@admin.register(CardFeedback)
class CardFeedbackAdmin(ClinicScoped, admin.ModelAdmin):
    list_display = ["received_at", "service", "rule", "outcome", "override_reason_code", "client"]
    list_filter = ["outcome", "service", "rule"]
    readonly_fields = [field.name for field in CardFeedback._meta.fields]

    def has_add_permission(self, request):
        return False

    def get_urls(self):
        return [
            path("acceptance/", self.admin_site.admin_view(self.acceptance_view), name="ehr_cardfeedback_acceptance"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "subtitle": format_html(
                '<a href="{}">{}</a>', reverse("admin:ehr_cardfeedback_acceptance"), _("Acceptance rate per card")
            ),
        }
        return super().changelist_view(request, extra_context)

    def acceptance_view(self, request):
        """Staff only (admin_view): the acceptance rate of each card, by the rule that issued it (of the staff
        member's clinic's EHRs, unless a superuser)."""
        rows = acceptance_by_rule(
            scoped(CardFeedback.objects.all(), request), issued_cards=scoped(IssuedCard.objects.all(), request)
        )
        table = format_html(
            "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            _("Service"),
            _("Rule"),
            _("Issued"),
            _("Accepted"),
            _("Overridden"),
            _("Acceptance rate"),
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                (
                    (
                        row["service"],
                        row["rule"],
                        row["issued"],
                        row["accepted"],
                        row["overridden"],
                        "—" if row["rate"] is None else f"{row['rate']:.0%}",
                    )
                    for row in rows
                ),
            ),
        )
        context = {"title": _("Acceptance rate per card"), "content": table}
        return _page(context)


def _page(context):
    return HttpResponse(
        format_html(
            "<!doctype html><html><head><meta charset='utf-8'><title>{}</title></head>"
            "<body><h1>{}</h1>{}</body></html>",
            context["title"],
            context["title"],
            context["content"],
        )
    )
