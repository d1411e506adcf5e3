"""The few sentences the gateway itself adds to a chatbot's answer, in the answer's language (English otherwise)."""
from __future__ import annotations

from functools import lru_cache

from babel import Locale, UnknownLocaleError

# {titles}: the options' titles as a list ("a, b, or c"); {keys}: the keys ("1, 2 or 3"); {more}: how many more.
MENU = {
    "en": "You can say {titles}. Or press {keys}.",
    "es": "Puede decir {titles}. O pulse {keys}.",
    "de": "Sie können {titles} sagen. Oder drücken Sie {keys}.",
    "fr": "Vous pouvez dire {titles}. Ou appuyez sur {keys}.",
}
MENU_MORE = {  # more options than keys: the first few are said, the caller may say any of them
    "en": "You can say {titles}, or one of {more} more choices. Or press {keys}.",
    "es": "Puede decir {titles}, u otra de {more} opciones más. O pulse {keys}.",
    "de": "Sie können {titles} sagen, oder eine von {more} weiteren Möglichkeiten. Oder drücken Sie {keys}.",
    "fr": "Vous pouvez dire {titles}, ou l'un des {more} autres choix. Ou appuyez sur {keys}.",
}
# Said as the message is queued, before Twilio answers: "sending", as a refusal may still come (then LINK_NOT_SENT
# is said before the next answer).
LINK_SENT = {
    "en": ("I'm sending you the link by text message.", "I'm sending you the links by text message."),
    "es": ("Le estoy enviando el enlace por SMS.", "Le estoy enviando los enlaces por SMS."),
    "de": ("Ich schicke Ihnen den Link per SMS.", "Ich schicke Ihnen die Links per SMS."),
    "fr": ("Je vous envoie le lien par SMS.", "Je vous envoie les liens par SMS."),
}
LINK_NOT_SENT = {
    "en": ("I couldn't send you the link by text message.", "I couldn't send you the links by text message."),
    "es": ("No he podido enviarle el enlace por SMS.", "No he podido enviarle los enlaces por SMS."),
    "de": ("Ich konnte Ihnen den Link nicht per SMS schicken.", "Ich konnte Ihnen die Links nicht per SMS schicken."),
    "fr": ("Je n'ai pas pu vous envoyer le lien par SMS.", "Je n'ai pas pu vous envoyer les liens par SMS."),
}
SMS_CONTEXT = {  # the text message's line of context, above the links
    "en": "Here is what we talked about on the phone:",
    "es": "Esto es lo que comentamos por teléfono:",
    "de": "Hier ist, worüber wir am Telefon gesprochen haben:",
    "fr": "Voici ce dont nous avons parlé au téléphone :",
}
# Said where a bare link or email address was ("Write to us at the email address."), so the sentence still holds.
LINK_WORDS = {"en": "the link", "es": "el enlace", "de": "den Link", "fr": "le lien"}
EMAIL_WORDS = {"en": "the email address", "es": "la dirección de correo", "de": "die E-Mail-Adresse",
               "fr": "l'adresse e-mail"}
RANGE = {"en": "to", "es": "a", "de": "bis", "fr": "à"}  # "Mon–Fri 9–17" → "Monday to Friday 9 to 17"
PLUS = {"en": "plus", "es": "más", "de": "plus", "fr": "plus"}  # the + of an international number


def base(language: str | None) -> str:
    """The language's two-letter base ("es-MX" → "es"), lower case; "en" for anything unknown."""
    return (language or "en").split("-")[0].split("_")[0].lower() or "en"


def pick(table: dict, language: str | None):
    """The table's entry for the language, English when it has none."""
    return table.get(base(language), table["en"])


@lru_cache(maxsize=64)
def locale(language: str | None) -> Locale:
    """Babel's locale for a BCP-47 tag (dates, times, day names, "a, b or c"); English when Babel has none."""
    try:
        return Locale.parse((language or "en").replace("-", "_"))
    except (ValueError, UnknownLocaleError):
        try:
            return Locale.parse(base(language))
        except (ValueError, UnknownLocaleError):
            return Locale.parse("en")


def link_note(language: str | None, sent: bool, count: int = 1) -> str:
    """The sentence a caller hears about the links of an answer: sent by text message, or not."""
    singular, plural = pick(LINK_SENT if sent else LINK_NOT_SENT, language)
    return singular if count == 1 else plural
