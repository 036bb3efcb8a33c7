"""A tiny translation table: Norwegian bokmål and English.

``?lang=nb|en`` chooses (and is remembered in the session); otherwise the
browser's Accept-Language, then English. A real app would use Flask-Babel.
"""

from __future__ import annotations

from flask import request, session

LANGUAGES = ("en", "nb")

STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "app_name": "Expense",
        "sign_in": "Sign in",
        "sign_out": "Sign out",
        "signed_out": "You are signed out of Expense.",
        "welcome": "Keep track of outlays, mileage and travel, and have them approved.",
        "signed_in_as": "Signed in as",
        "email": "Email",
        "company": "Company",
        "org_number": "Organisation number",
        "roles": "Roles",
        "no_agreement": "Your sign-in has no company, so there are no claims to show.",
        "switch_company": "Switch company",
        "my_claims": "My claims",
        "approvals": "Claims to approve",
        "new_outlay": "New outlay",
        "new_mileage": "New mileage",
        "new_travel": "New travel",
        "amount": "Amount",
        "currency": "Currency",
        "date": "Date",
        "purpose": "Purpose",
        "receipt": "Receipt (PNG, JPEG or PDF, at most 5 MB)",
        "km": "Kilometres",
        "route": "Route",
        "from_date": "From",
        "to_date": "To",
        "destination": "Destination",
        "save_draft": "Save draft",
        "submit": "Submit for approval",
        "approve": "Approve",
        "reject": "Reject",
        "status": "Status",
        "kind": "Kind",
        "by": "By",
        "none_yet": "Nothing here yet.",
        "draft": "Draft",
        "submitted": "Submitted",
        "approved": "Approved",
        "rejected": "Rejected",
        "outlay": "Outlay",
        "mileage": "Mileage",
        "travel": "Travel",
        "saved": "Saved as a draft.",
        "was_submitted": "Submitted for approval.",
        "was_approved": "The claim is approved.",
        "was_rejected": "The claim is rejected.",
        "cannot_decide": "That claim cannot be decided (already decided, or your own).",
        "need_two_step": "Approving needs two-step verification. Set up an authenticator app in your account, "
                         "then try again.",
        "receipt_empty": "Attach the receipt.",
        "receipt_too_large": "The receipt is larger than 5 MB.",
        "receipt_type": "The receipt must be a PNG or JPEG image or a PDF.",
        "bad_amount": "Enter an amount above zero, like 249.90.",
        "bad_date": "Enter a date like 2026-03-14.",
        "bad_km": "Enter the kilometres driven, above zero.",
        "required": "Fill in every field.",
        "sign_in_failed": "Sign-in failed",
        "try_again": "Try again",
        "not_found": "Not found",
        "view_receipt": "Receipt",
        "abroad": "Abroad",
        "per_diem": "Per diem",
        "days": "days",
        "trip_ends_before_start": "The trip must end on or after the day it starts.",
        "trip_too_long": "A trip can last at most 90 days.",
        "passengers": "Passengers",
        "passenger_name": "Passenger's name",
        "add_passenger": "Add passenger",
        "remove": "Remove",
        "passengers_locked": "Passengers can only be changed while the claim is your draft.",
    },
    "nb": {
        "app_name": "Utlegg",
        "sign_in": "Logg inn",
        "sign_out": "Logg ut",
        "signed_out": "Du er logget ut av Utlegg.",
        "welcome": "Hold orden på utlegg, kjøregodtgjørelse og reiser, og få dem godkjent.",
        "signed_in_as": "Logget inn som",
        "email": "E-post",
        "company": "Firma",
        "org_number": "Organisasjonsnummer",
        "roles": "Roller",
        "no_agreement": "Innloggingen din har ikke noe firma, så det er ingen krav å vise.",
        "switch_company": "Bytt firma",
        "my_claims": "Mine krav",
        "approvals": "Krav til godkjenning",
        "new_outlay": "Nytt utlegg",
        "new_mileage": "Ny kjøregodtgjørelse",
        "new_travel": "Ny reise",
        "amount": "Beløp",
        "currency": "Valuta",
        "date": "Dato",
        "purpose": "Formål",
        "receipt": "Kvittering (PNG, JPEG eller PDF, høyst 5 MB)",
        "km": "Kilometer",
        "route": "Strekning",
        "from_date": "Fra",
        "to_date": "Til",
        "destination": "Reisemål",
        "save_draft": "Lagre utkast",
        "submit": "Send til godkjenning",
        "approve": "Godkjenn",
        "reject": "Avvis",
        "status": "Status",
        "kind": "Type",
        "by": "Av",
        "none_yet": "Ingenting her ennå.",
        "draft": "Utkast",
        "submitted": "Sendt",
        "approved": "Godkjent",
        "rejected": "Avvist",
        "outlay": "Utlegg",
        "mileage": "Kjøregodtgjørelse",
        "travel": "Reise",
        "saved": "Lagret som utkast.",
        "was_submitted": "Sendt til godkjenning.",
        "was_approved": "Kravet er godkjent.",
        "was_rejected": "Kravet er avvist.",
        "cannot_decide": "Det kravet kan ikke behandles (allerede behandlet, eller ditt eget).",
        "need_two_step": "Godkjenning krever totrinnsbekreftelse. Sett opp en autentiseringsapp i kontoen din, "
                         "og prøv igjen.",
        "receipt_empty": "Legg ved kvitteringen.",
        "receipt_too_large": "Kvitteringen er større enn 5 MB.",
        "receipt_type": "Kvitteringen må være et PNG- eller JPEG-bilde eller en PDF.",
        "bad_amount": "Skriv et beløp over null, for eksempel 249,90.",
        "bad_date": "Skriv en dato som 2026-03-14.",
        "bad_km": "Skriv antall kilometer, over null.",
        "required": "Fyll ut alle feltene.",
        "sign_in_failed": "Innloggingen mislyktes",
        "try_again": "Prøv igjen",
        "not_found": "Finnes ikke",
        "view_receipt": "Kvittering",
        "abroad": "Utlandet",
        "per_diem": "Diett",
        "days": "dager",
        "trip_ends_before_start": "Reisen må slutte samme dag som den starter eller senere.",
        "trip_too_long": "En reise kan vare høyst 90 dager.",
        "passengers": "Passasjerer",
        "passenger_name": "Passasjerens navn",
        "add_passenger": "Legg til passasjer",
        "remove": "Fjern",
        "passengers_locked": "Passasjerer kan bare endres mens kravet er ditt utkast.",
    },
}


def language() -> str:
    chosen = request.args.get("lang")
    if chosen in LANGUAGES:
        if session.get("lang") != chosen:
            session["lang"] = chosen
        return chosen
    if session.get("lang") in LANGUAGES:
        return session["lang"]
    best = request.accept_languages.best_match(["en", "nb", "no", "nn"])
    return "nb" if best in ("nb", "no", "nn") else "en"


def translate(key: str) -> str:
    lang = language()
    return STRINGS[lang].get(key) or STRINGS["en"].get(key, key)
