"""What Palier keeps about people and homes: every model field, classified.

`FIELDS` maps "app_label.Model.field" to an `Entry`: the category of data, the processing it
serves (purpose, legal basis, recipients, retention and its source: `PROCESSINGS`), and, where
it differs from the processing's, the field's own retention. Fields named in `TECHNICAL_FIELDS`
(keys, creation times, the organisation) are not personal wherever they appear.

tests/api/privacy/test_inventory.py fails naming any field of an api.* model missing here, so a
new field is classified when it is added. docs/privacy.md is generated from this module
(`palier privacy-register`).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.apps import apps

from .retention import CIVIL_2224, CNIL_SOCIAL, LOI_1989_7_1, RULES


@dataclass(frozen=True)
class Category:
    """A kind of data, as a data-protection officer lists it."""

    key: str
    label: str
    description: str


CATEGORIES: dict[str, Category] = {
    c.key: c
    for c in (
        Category("identity", "Identity", "Names, account, role, sign-in secrets (hashed)."),
        Category("contact", "Contact", "Phone, e-mail, push tokens, messages sent to a person."),
        Category("household", "Household", "Who lives in a dwelling with whom; delegations."),
        Category("tenancy", "Tenancy", "Leases, the home's address and door, rent and receipts."),
        Category(
            "request_free_text",
            "Request free text",
            "What people and staff write about a problem, photos of it, notes.",
        ),
        Category(
            "vulnerability",
            "Vulnerability",
            "Age, disability or health needing priority (kept only with consent).",
        ),
        Category(
            "in_home_telemetry",
            "In-home telemetry",
            "Readings of heating and ventilation units inside a home (occupancy can be inferred).",
        ),
        Category("staff_data", "Staff data", "Who on the staff did what, when; teams, rotas."),
        Category("not_personal", "Not personal", "Buildings, equipment, settings, counters."),
    )
}


@dataclass(frozen=True)
class Processing:
    """One line of the record of processing (RGPD art. 30)."""

    key: str
    name: str
    purpose: str
    legal_basis: str
    subjects: str
    recipients: str
    retention: str
    retention_source: str
    origin: str
    rules: tuple[str, ...] = ()


TENANTS = "Tenants and household members"
STAFF = "Landlord staff (caretakers, technicians, agency staff, managers), contractors' staff"
STAFF_IN_SCOPE = "Landlord staff within their scope (residence, agency, organisation)"

PROCESSINGS: dict[str, Processing] = {
    p.key: p
    for p in (
        Processing(
            "accounts",
            "Accounts and sign-in",
            "Identify each person and let them sign in: tenants by a code sent by SMS, staff by "
            "e-mail and password; choose their language.",
            "Contract (RGPD art. 6.1.b: the lease, the staff member's employment or contract).",
            f"{TENANTS}; delegates; {STAFF}",
            f"{STAFF_IN_SCOPE}; the SMS provider (processor) for login codes",
            "While a lease or an employment is in force. Former tenants: contact data 3 years "
            "after the last lease ends, names 5 years after (then anonymised). Login codes: "
            "24 hours.",
            f"{LOI_1989_7_1}; {CIVIL_2224}; {CNIL_SOCIAL}",
            "The person; the landlord's tenancy register (import); staff.",
            ("former_household_contact", "former_household_identity", "login_codes"),
        ),
        Processing(
            "tenancy",
            "Tenancy and household",
            "Know who lives where under which lease, so that each person sees their own home and "
            "staff reach the right household.",
            "Contract (the lease) and legal obligation (Code de la construction et de "
            "l'habitation, social housing rules).",
            TENANTS,
            STAFF_IN_SCOPE,
            "The lease's duration, then 5 years (limitation period) before the household's "
            "identity is anonymised.",
            RULES["former_household_identity"].source,
            "The landlord's tenancy register (import); agency staff.",
            ("former_household_identity",),
        ),
        Processing(
            "delegations",
            "Delegations",
            "Let a tenant name someone (relative, social worker) who may follow or make requests "
            "for them.",
            "Consent of the tenant who delegates (RGPD art. 6.1.a), revocable at any time.",
            f"{TENANTS}; their delegates",
            "The tenant, the delegate, agency staff",
            "Until expiry or revocation, then with the account.",
            RULES["former_household_identity"].source,
            "The tenant, or staff on their behalf.",
        ),
        Processing(
            "requests",
            "Repair and service requests",
            "Take, route and follow requests (repairs, cleanliness, neighbourhood), appointments, "
            "outages and their notices; measure service quality.",
            "Contract and legal obligation: the landlord keeps the home in good repair (loi n° "
            "89-462 du 6 juillet 1989, art. 6).",
            f"{TENANTS}; {STAFF}; requesters of Open311 partners",
            f"{STAFF_IN_SCOPE}; the technician or contractor assigned; Open311 partners for "
            "their own requests",
            "Free text, photos, notes and position anonymised 5 years after closure; the rest "
            "(category, place, dates) kept for statistics.",
            RULES["closed_ticket_free_text"].source,
            "The tenant (app, SMS), staff, fault detection, Open311 partners.",
            ("closed_ticket_free_text", "inbound_sms"),
        ),
        Processing(
            "vulnerability",
            "Priority for vulnerable households",
            "Raise the priority of heating and lift outages for households who said they need it.",
            "Explicit consent (RGPD art. 9.2.a), in its own field, withdrawable.",
            TENANTS,
            "Staff who dispatch repairs and outages",
            "Until consent is withdrawn (the row is deleted); at the latest 30 days after the "
            "person's last lease ends.",
            RULES["former_household_vulnerability"].source,
            "The tenant, or staff with the tenant's consent.",
            ("former_household_vulnerability",),
        ),
        Processing(
            "telemetry",
            "In-home telemetry",
            "Detect faults of heating and ventilation units inside homes (fault_detection) and, "
            "with consent, comfort and energy statistics (comfort_statistics).",
            "fault_detection: legitimate interest and the landlord's repair duty, with a right to "
            "object; comfort_statistics: consent (see 'Consent and purposes').",
            "Households of the dwellings fitted with a connected unit",
            "Maintenance staff and the technician in charge of a repair; the household itself",
            "Raw readings 90 days, hourly averages 730 days; a previous tenant's readings 90 days "
            "after their lease ends.",
            RULES["previous_tenant_readings"].source,
            "The units (MQTT).",
            (
                "telemetry_raw",
                "telemetry_aggregates",
                "telemetry_quarantine",
                "previous_tenant_readings",
            ),
        ),
        Processing(
            "telemetry_consent",
            "Consent to in-home telemetry purposes",
            "Record each household's decision per purpose, with time and channel, as proof.",
            "Legal obligation (RGPD art. 7.1: show that consent was given).",
            TENANTS,
            "Agency staff; the household",
            "Lease end + 5 years.",
            RULES["telemetry_consent_history"].source,
            "The tenant (app) or staff (paper, phone, in person).",
            ("telemetry_consent_history",),
        ),
        Processing(
            "faults",
            "Faults detected",
            "Follow faults found by the rules until repaired; open requests and outages.",
            "As in-home telemetry (fault_detection).",
            "Households of the dwellings concerned; staff who handle faults",
            "Maintenance staff, technicians",
            "With the unit's history; readings they quote follow the telemetry retention.",
            RULES["previous_tenant_readings"].source,
            "The fault engine; staff.",
        ),
        Processing(
            "notifications",
            "Notifications",
            "Tell people about their requests, outages and news by push, SMS or e-mail; call "
            "the on-call chain; list households to visit when a critical notice did not reach.",
            "Contract (tenants), legitimate interest (staff alerts), vital interest for critical "
            "safety notices.",
            f"{TENANTS}; {STAFF}",
            "Push, SMS and e-mail providers (processors); the caretaker for door-knocking lists",
            "1 year.",
            RULES["notifications"].source,
            "Palier itself, from events.",
            ("notifications",),
        ),
        Processing(
            "news",
            "Residence news",
            "Inform residents (works, renovations, notices) and record who acknowledged a notice.",
            "Legitimate interest; legal obligation for works notices.",
            f"{TENANTS}; staff authors",
            "Residents of the residence",
            "While the post is kept; staff delete obsolete posts.",
            "Purpose limitation (RGPD art. 5.1.e)",
            "Staff; tenants (acknowledgements).",
        ),
        Processing(
            "rent_documents",
            "Rent ledger and receipts",
            "Deliver rent receipts on request (loi 1989, art. 21).",
            "Legal obligation.",
            "Lease holders",
            "The tenant; agency staff",
            "Ledger lines: 10 years (accounting records, Code de commerce art. L123-22); "
            "receipts: 3 years after the rent period.",
            f"Code de commerce, art. L123-22; {RULES['former_household_contact'].source}",
            "The landlord's accounting system (import).",
        ),
        Processing(
            "staff_work",
            "Staff organisation",
            "Assign residences, teams, on-call rotas and contractors; trace who did what.",
            "Legitimate interest and the employment or service contract.",
            STAFF,
            "Managers of the organisation",
            "While in post; history rows with the records they explain.",
            "Code du travail, art. L1221-1 s. (employment records); Code civil, art. 2224",
            "Managers; the HR register.",
        ),
        Processing(
            "audits",
            "Cleanliness audits",
            "Check common areas' cleanliness, score contractors, follow corrective actions.",
            "Legitimate interest and the cleaning contract.",
            f"{STAFF} (auditors, cleaning contractors); tenants answering the weekly survey",
            "Managers, the contractor concerned",
            "5 years (the contract's limitation period).",
            RULES["closed_ticket_free_text"].source,
            "Auditors on site.",
        ),
        Processing(
            "access_log",
            "Access log",
            "Record which staff member read a person's data, so the person can see it.",
            "Legal obligation (RGPD art. 5.2 and 32: accountability and security).",
            f"{TENANTS}; {STAFF}",
            "The person concerned; the data-protection officer",
            "1 year.",
            RULES["access_log"].source,
            "Palier itself.",
            ("access_log",),
        ),
        Processing(
            "rights",
            "Rights requests",
            "Handle exports, erasures and rectifications, and prove they were handled.",
            "Legal obligation (RGPD art. 12 to 22).",
            TENANTS,
            "The person; the data-protection officer",
            "Export files: until their link expires. Erasure and rectification records: 5 years.",
            "Code civil, art. 2224",
            "The person; staff with a reason.",
        ),
        Processing(
            "estate_history",
            "Register history",
            "Keep who changed the register, leases and delegations, when and why.",
            "Legitimate interest (accountability of changes to tenancies).",
            f"{TENANTS}; {STAFF}",
            STAFF_IN_SCOPE,
            "With the records it explains.",
            "Code civil, art. 2224",
            "Palier itself.",
        ),
    )
}


@dataclass(frozen=True)
class Entry:
    """The classification of one field."""

    category: str
    processing: str = ""
    retention: str = ""
    note: str = ""


NOT_PERSONAL = Entry("not_personal")
# Keys, timestamps of rows and the landlord: never about a person by themselves.
TECHNICAL_FIELDS = frozenset({"id", "created_at", "updated_at", "organisation"})

FIELDS: dict[str, Entry] = {}


def _add(model: str, entry: Entry, names: str) -> None:
    for name in names.split():
        key = f"{model}.{name}"
        if key in FIELDS:
            raise ValueError(f"{key} classified twice")
        FIELDS[key] = entry


def E(category: str, processing: str = "", retention: str = "", note: str = "") -> Entry:
    """Shorthand for an Entry."""
    return Entry(category, processing, retention, note)


# --- accounts --------------------------------------------------------------------------------
_add("accounts.User", E("identity", "accounts"), "first_name last_name role language date_joined")
_add("accounts.User", E("contact", "accounts"), "email phone")
_add(
    "accounts.User",
    E("identity", "accounts", note="Sign-in secret, hashed; activity flags."),
    "password last_login is_active is_staff is_superuser",
)
_add(
    "accounts.LoginCode",
    E("identity", "accounts", retention="24 hours", note="Code and number hashed."),
    "phone_digest user code_hash expires_at used_at throttling_failure_timestamp "
    "throttling_failure_count",
)
_add("accounts.PersonalDataAccess", E("staff_data", "access_log"), "viewer viewer_role context at")
_add(
    "accounts.Vulnerability",
    E("vulnerability", "vulnerability"),
    "person kind consent_at consent_channel",
)
_add("accounts.Vulnerability", E("staff_data", "vulnerability"), "recorded_by")
_add("accounts.PersonalDataAccess", E("identity", "access_log"), "subject")

# --- estate ----------------------------------------------------------------------------------
_add("estate.Organisation", NOT_PERSONAL, "name slug retention")
_add("estate.Agency", NOT_PERSONAL, "name")
_add(
    "estate.Residence",
    NOT_PERSONAL,
    "agency reference name address postcode city priority_neighbourhood latitude longitude",
)
_add("estate.Building", NOT_PERSONAL, "residence reference address")
_add("estate.Entrance", NOT_PERSONAL, "building reference label")
_add(
    "estate.Dwelling",
    E(
        "tenancy",
        "tenancy",
        note="A home: personal once linked to its lease (door, floor, type, size).",
    ),
    "entrance reference floor door type surface",
)
_add("estate.CommonArea", NOT_PERSONAL, "kind name entrance building residence")
_add(
    "estate.Equipment",
    NOT_PERSONAL,
    "kind make model serial install_date dwelling common_area",
)
_add("estate.Lease", E("tenancy", "tenancy"), "dwelling reference start_date end_date")
_add("estate.HouseholdMember", E("household", "tenancy"), "lease person relation")
_add("estate.AgencyMembership", E("staff_data", "staff_work"), "agency user")
_add("estate.CaretakerAssignment", E("staff_data", "staff_work"), "caretaker residence")
_add("estate.Team", NOT_PERSONAL, "name kind")
_add("estate.TeamMembership", E("staff_data", "staff_work"), "team user")
_add("estate.TeamSector", NOT_PERSONAL, "team residence")
_add("estate.Contractor", NOT_PERSONAL, "name trade")
_add("estate.ContractorContract", NOT_PERSONAL, "contractor residence trade start_date end_date")
_add("estate.ContractorMember", E("staff_data", "staff_work"), "contractor user")
_add(
    "estate.Delegation",
    E("household", "delegations"),
    "grantor delegate relation can_create_requests starts_at expires_at revoked_at",
)
_add("estate.Delegation", E("staff_data", "delegations"), "created_by revoked_by")
_add("estate.EstateEvent", NOT_PERSONAL, "kind subject_type subject_id")
_add("estate.EstateEvent", E("staff_data", "estate_history"), "actor reason")
_add("estate.EstateEvent", E("household", "estate_history"), "on_behalf_of")
_add(
    "estate.EstateEvent",
    E("tenancy", "estate_history", note="Changed values: may hold names of members."),
    "data",
)
_add(
    "estate.TelemetryConsent",
    E("household", "telemetry_consent"),
    "lease purpose granted channel decided_at person",
)
_add("estate.TelemetryConsent", E("staff_data", "telemetry_consent"), "recorded_by reason")

# --- telemetry -------------------------------------------------------------------------------
_add(
    "telemetry.Device",
    NOT_PERSONAL,
    "device_id kind model firmware equipment status status_changed_at revoked_at "
    "reporting_interval_s password_hash aggregate_dirty_since last_boot last_seq",
)
_add(
    "telemetry.Device",
    E(
        "in_home_telemetry",
        "telemetry",
        note="For a unit in a home, the last contact times tell when it is powered.",
    ),
    "last_seen_at last_message_at",
)
_add("telemetry.DeviceEvent", NOT_PERSONAL, "device kind at detail")
_add("telemetry.DeviceEvent", E("staff_data", "staff_work"), "actor")
_add(
    "telemetry.Reading",
    E("in_home_telemetry", "telemetry", retention="90 days (whole days dropped)"),
    "device ts boot seq names vals offsets texts",
)
_add(
    "telemetry.ReadingHour",
    E("in_home_telemetry", "telemetry", retention="730 days"),
    "device name hour vmin vmax vsum count",
)
_add(
    "telemetry.Quarantine",
    E(
        "in_home_telemetry",
        "telemetry",
        retention="30 days",
        note="First bytes of a refused message.",
    ),
    "topic device_ref reason detail raw size received_at dedupe_hash",
)
_add("telemetry.QuarantineCounter", NOT_PERSONAL, "day reason count")

# --- tickets ---------------------------------------------------------------------------------
_add(
    "tickets.Category",
    NOT_PERSONAL,
    "parent code name labels help in_dwelling in_common_areas default_priority "
    "acknowledge_within resolve_within continuous_clock payer payer_note is_active position",
)
_add(
    "tickets.CategoryQuestion",
    NOT_PERSONAL,
    "category key kind text labels required choices min_value max_value position",
)
_add("tickets.CategoryRoute", NOT_PERSONAL, "category residence team contractor")
_add("tickets.TicketCounter", NOT_PERSONAL, "year last")
_add(
    "tickets.Ticket",
    NOT_PERSONAL,
    "reference category priority source status place_kind residence building entrance "
    "common_area equipment related_fault_id duplicate_of incident waiting_reason "
    "acknowledge_due_at resolve_due_at acknowledged_at resolved_at closed_at paused_at "
    "acknowledge_breached_at resolve_breached_at escalated_at confirmation_requested_at "
    "confirmation confirmed_at reopen_count missed_appointments version partner",
)
_add("tickets.Ticket", E("tenancy", "requests"), "dwelling")
_add("tickets.Ticket", E("identity", "requests"), "reporter")
_add(
    "tickets.Ticket",
    E("staff_data", "requests"),
    "created_by assigned_team assigned_contractor assignee",
)
_add(
    "tickets.Ticket",
    E("request_free_text", "requests", retention="Anonymised 5 years after closure"),
    "description answers latitude longitude rating_comment",
)
_add("tickets.Ticket", E("request_free_text", "requests"), "rating rated_at")
_add(
    "tickets.Ticket",
    E("contact", "requests", retention="Anonymised 5 years after closure"),
    "external_contact",
)
_add("tickets.TicketEvent", NOT_PERSONAL, "ticket kind from_status to_status public")
_add("tickets.TicketEvent", E("staff_data", "requests"), "actor actor_role")
_add("tickets.TicketEvent", E("household", "requests"), "on_behalf_of")
_add(
    "tickets.TicketEvent",
    E("request_free_text", "requests", retention="Anonymised 5 years after closure"),
    "note data",
)
_add(
    "tickets.TicketPhoto",
    E("request_free_text", "requests", retention="Deleted 5 years after closure"),
    "ticket image thumbnail content_type width height size taken_at uploaded_by",
)
_add("tickets.TicketFollower", E("identity", "requests"), "ticket user me_too")
_add(
    "tickets.Appointment",
    E("tenancy", "requests", note="When someone is at home."),
    "ticket proposal starts_at ends_at status booked_by booked_at key_with_caretaker "
    "reminder_sent_at",
)
_add("tickets.Appointment", E("staff_data", "requests"), "proposed_by")
_add(
    "tickets.Appointment",
    E("request_free_text", "requests", retention="Anonymised 5 years after closure"),
    "note",
)
_add(
    "tickets.Incident",
    NOT_PERSONAL,
    "category residence building status source public_message expected_end started_at "
    "ended_at related_fault_id version",
)
_add("tickets.Incident", E("staff_data", "requests"), "opened_by")
_add("tickets.IncidentUpdate", NOT_PERSONAL, "incident kind public_message expected_end recipients")
_add("tickets.IncidentUpdate", E("staff_data", "requests"), "actor")
_add("tickets.Partner", NOT_PERSONAL, "name key_prefix key_hash is_active last_used_at")
_add("tickets.SyncTombstone", NOT_PERSONAL, "kind object_id residence deleted_at")
_add(
    "tickets.InboundSms",
    E("contact", "requests", retention="Anonymised after 1 year"),
    "sender body",
)
_add("tickets.InboundSms", NOT_PERSONAL, "message_id received_at ticket outcome")

# --- notifications ---------------------------------------------------------------------------
_add(
    "notifications.Notification",
    E("contact", "notifications", retention="1 year"),
    "recipient event context language title body critical deep_link dedupe_key batch "
    "dwelling broadcast alert read_at",
)
_add("notifications.Notification", E("staff_data", "notifications"), "actor")
_add(
    "notifications.Delivery",
    E("contact", "notifications", retention="1 year (with its notification)"),
    "notification channel status critical not_before only_if_unread attempts claimed_until "
    "provider_id last_error detail sent_at delivered_at failed_at read_at",
)
_add(
    "notifications.PushDevice",
    E("contact", "notifications", retention="Until disabled or the account is closed"),
    "user kind token token_hash p256dh auth platform label last_seen_at disabled_at "
    "disabled_reason",
)
_add(
    "notifications.NotificationPreference",
    E("contact", "notifications", retention="With the account"),
    "user push_enabled sms_enabled email_enabled quiet_start quiet_end",
)
_add(
    "notifications.Broadcast",
    NOT_PERSONAL,
    "kind critical message translations residence building entrance starts_at ends_at status "
    "sent_at batch",
)
_add("notifications.Broadcast", E("staff_data", "notifications"), "created_by sent_by")
_add(
    "notifications.HouseholdReach",
    E("household", "notifications", retention="1 year"),
    "batch dwelling event title broadcast list_after listed_at reached_at reached_via "
    "visited_at visit_outcome visit_note",
)
_add("notifications.HouseholdReach", E("staff_data", "notifications"), "visited_by")
_add(
    "notifications.OnCallShift",
    E("staff_data", "staff_work"),
    "team user starts_at ends_at position",
)
_add(
    "notifications.TeamAlert",
    E("staff_data", "notifications", retention="1 year"),
    "team event context critical dedupe_key status chain level escalate_at acknowledged_at "
    "acknowledged_by digest",
)

# --- news ------------------------------------------------------------------------------------
_add(
    "news.Post",
    NOT_PERSONAL,
    "residence building entrance kind title body project publish_at pinned starts_at ends_at "
    "requires_acknowledgement notified_at",
)
_add("news.Post", E("staff_data", "news"), "author")
_add("news.PostAttachment", NOT_PERSONAL, "post file name content_type size")
_add("news.PostAcknowledgement", E("household", "news"), "post dwelling person on_behalf_of")

# --- documents -------------------------------------------------------------------------------
_add(
    "documents.LandlordProfile",
    NOT_PERSONAL,
    "legal_name address postcode city siret signatory_title",
)
_add("documents.LandlordProfile", E("staff_data", "rent_documents"), "signatory_name")
_add(
    "documents.RentLedgerLine",
    E("tenancy", "rent_documents", retention="10 years"),
    "lease period rent charges amount_paid payment_date source",
)
_add(
    "documents.RentReceipt",
    E("tenancy", "rent_documents"),
    "lease line period kind file sha256 version generated_at",
)
_add("documents.RentReceipt", E("staff_data", "rent_documents"), "generated_by")
_add(
    "documents.LedgerImport",
    E("staff_data", "rent_documents"),
    "actor file_name dry_run rows created updated unchanged errors",
)

# --- faults ----------------------------------------------------------------------------------
_add(
    "faults.RuleOverride",
    NOT_PERSONAL,
    "rule device_model residence enabled changes severity source version",
)
_add("faults.RuleOverride", E("staff_data", "staff_work"), "updated_by")
_add(
    "faults.FaultCalendar",
    NOT_PERSONAL,
    "time_zone season_start_month season_start_day season_end_month season_end_day source",
)
_add("faults.FaultCalendar", E("staff_data", "staff_work"), "updated_by")
_add(
    "faults.RuleVersion",
    NOT_PERSONAL,
    "override version enabled changes severity source definition",
)
_add("faults.RuleVersion", E("staff_data", "staff_work"), "created_by")
_add("faults.DeviceRuleStates", E("in_home_telemetry", "faults"), "device states event_at")
_add(
    "faults.Fault",
    E("in_home_telemetry", "faults"),
    "device rule rule_version title category severity state condition_active raised_at since "
    "cleared_at closed_at repeat_count last_repeat_at values detail ticket incident "
    "dispatch_due_at dispatched_at dwelling building residence",
)
_add(
    "faults.Fault",
    E("staff_data", "faults"),
    "acknowledged_at acknowledged_by shelved_until shelve_reason shelved_by",
)
_add(
    "faults.FaultEvent", E("in_home_telemetry", "faults"), "fault kind at from_state to_state data"
)
_add("faults.FaultEvent", E("staff_data", "faults"), "actor note")

# --- audits ----------------------------------------------------------------------------------
_add("audits.AuditTemplate", NOT_PERSONAL, "code version name is_current")
_add("audits.AuditTemplate", E("staff_data", "audits"), "created_by")
_add("audits.TemplateSection", NOT_PERSONAL, "template area_kind title position")
_add(
    "audits.TemplateQuestion",
    NOT_PERSONAL,
    "template section code text answer_type weight critical responsible photo_required "
    "ticket_category position",
)
_add(
    "audits.AuditRound",
    NOT_PERSONAL,
    "residence period_start period_end planned_for seed cycle sample_size selection status",
)
_add("audits.AuditRound", E("staff_data", "audits"), "assignee created_by")
_add("audits.RoundTarget", NOT_PERSONAL, "round entrance reason position")
_add(
    "audits.Audit",
    NOT_PERSONAL,
    "residence entrance round template contractor score raw_score capped area_scores status",
)
_add(
    "audits.Audit",
    E("staff_data", "audits"),
    "auditor started_at finished_at device_started_at device_finished_at clock_skew_seconds "
    "received_at countersigned_by countersigned_at countersign_note note",
)
_add(
    "audits.AuditAnswer",
    NOT_PERSONAL,
    "audit question common_area value failed ticket disputed dispute_outcome original_value",
)
_add(
    "audits.AuditAnswer",
    E("staff_data", "audits"),
    "comment verified_at verified_by dispute_note dispute_reason settled_at settled_by",
)
_add(
    "audits.AuditPhoto",
    E("staff_data", "audits", note="Photos of common areas; people should not appear."),
    "audit answer image thumbnail content_type width height size taken_at uploaded_by",
)
_add("audits.AuditEvent", NOT_PERSONAL, "audit round kind data")
_add("audits.AuditEvent", E("staff_data", "audits"), "actor")
_add("audits.SurveyResponse", NOT_PERSONAL, "entrance week")
_add(
    "audits.SurveyResponse",
    E("request_free_text", "audits", note="A tenant's opinion of their staircase."),
    "respondent rating channel",
)
_add("audits.ScoringPolicy", NOT_PERSONAL, "penalty_below bonus_from critical_cap version")
_add("audits.ScoringPolicy", E("staff_data", "audits"), "updated_by")
_add(
    "audits.AuditReport",
    NOT_PERSONAL,
    "period subject residence contractor file size audits residences",
)

# --- privacy ---------------------------------------------------------------------------------
_add(
    "privacy.DataExport",
    E("identity", "rights", retention="Files deleted when the link expires"),
    "subject status json_file pdf_file sections started_at ready_at expires_at error",
)
_add("privacy.DataExport", E("staff_data", "rights"), "requested_by reason")
_add(
    "privacy.ErasureRequest",
    E("identity", "rights", retention="5 years"),
    "subject executed_at summary",
)
_add(
    "privacy.ErasureRequest",
    E("staff_data", "rights"),
    "requested_by requested_by_role reason",
)
_add("privacy.Rectification", E("identity", "rights", retention="5 years"), "subject fields")
_add(
    "privacy.Rectification",
    E("staff_data", "rights"),
    "requested_by requested_by_role reason",
)


# --- Checks ----------------------------------------------------------------------------------


def palier_models() -> list:
    """Every concrete model of the api.* apps."""
    return [
        model
        for model in apps.get_models()
        if model.__module__.startswith("api.")
        and not model._meta.abstract
        and not model._meta.proxy
    ]


def field_key(model, field) -> str:
    return f"{model._meta.app_label}.{model.__name__}.{field.name}"


def classification(model, field) -> Entry | None:
    """The entry of one field, or None when it is not classified."""
    entry = FIELDS.get(field_key(model, field))
    if entry is None and field.name in TECHNICAL_FIELDS:
        return NOT_PERSONAL
    return entry


def unclassified_fields() -> list[str]:
    """Fields of api.* models that the inventory does not classify."""
    return [
        field_key(model, field)
        for model in palier_models()
        for field in model._meta.concrete_fields
        if classification(model, field) is None
    ]


def stale_entries() -> list[str]:
    """Entries naming a field that no installed model has (renamed or removed fields)."""
    present = {
        field_key(model, field)
        for model in palier_models()
        for field in model._meta.concrete_fields
    }
    installed = {config.label for config in apps.get_app_configs()}
    return sorted(key for key in FIELDS if key.split(".")[0] in installed and key not in present)


def invalid_entries() -> list[str]:
    """Entries with an unknown category or processing."""
    return sorted(
        key
        for key, entry in FIELDS.items()
        if entry.category not in CATEGORIES
        or (entry.category != "not_personal" and entry.processing not in PROCESSINGS)
    )
