"""What a caller hears of real-looking chatbot answers: the phone-text layer over a corpus in several languages, each
checked as plain words (Twilio's basic voices) and as the SSML inside <Say> (Polly and Google voices)."""
from __future__ import annotations

import re

import pytest

from gateway.phone import Pause, SayAs, link_note, render, speaks_ssml
from gateway.twilio import twiml

# (language, the chatbot's text, heard with a basic voice, the <Say> body with a Polly voice, links kept aside)
CORPUS = [
    ('en-US', '**Sure!** 😊 Our hours:\n- Mon–Fri 9–17\n- Sat 10–14\n\nDetails: https://example.com/hours',
     'Sure! Our hours: Monday to Friday 9 to 17, Saturday 10 to 14. Details.',
     'Sure! Our hours: Monday to Friday 9 to 17<break time="300ms" />Saturday 10 to 14.<break time="300ms" />Details.',
     ('https://example.com/hours',)),
    ('en-US', 'Hi there! 👋 How can I help you today?',
     'Hi there! How can I help you today?',
     'Hi there! How can I help you today?',
     ()),
    ('en-US', 'Your booking code is **BK-4821**. See you on 2026-12-24 at 19:30!',
     'Your booking code is B K, 4 8 2 1. See you on December 24, 2026 at 7:30 PM!',
     'Your booking code is B K, 4 8 2 1. See you on December 24, 2026 at 7:30 PM!',
     ()),
    ('en-US', 'You can reach our front desk at +1 555 123 4567, or email us at frontdesk@example.com.',
     'You can reach our front desk at plus 1, 5 5 5, 1 2 3, 4 5 6 7, or email us at the email address.',
     'You can reach our front desk at <say-as interpret-as="telephone">+1 555 123 4567</say-as>, or email us at the email address.',
     ('frontdesk@example.com',)),
    ('en-US', 'The card ending in 4242 was charged $45.90.',
     'The card ending in 4 2 4 2 was charged $45.90.',
     'The card ending in <say-as interpret-as="digits">4242</say-as> was charged $45.90.',
     ()),
    ('en-US', "# Opening hours\n\nWe're open **every day** from 8:00 to 22:00.",
     "Opening hours. We're open every day from 8:00 AM to 10:00 PM.",
     "Opening hours. We're open every day from 8:00 AM to 10:00 PM.",
     ()),
    ('en-US', "Here's what I found:\n\n1. The Margherita pizza 🍕\n2. The Caesar salad 🥗\n3. Tiramisu for dessert 🍰",
     "Here's what I found: The Margherita pizza, The Caesar salad, Tiramisu for dessert.",
     'Here\'s what I found: The Margherita pizza<break time="300ms" />The Caesar salad<break time="300ms" />Tiramisu for dessert.',
     ()),
    ('en-US', '| Size | Price |\n|------|-------|\n| Small | $9 |\n| Large | $14 |',
     'Size: Small, Price: $9, Size: Large, Price: $14.',
     'Size: Small, Price: $9<break time="300ms" />Size: Large, Price: $14.',
     ()),
    ('en-US', 'Run `pip install chatline` and then restart the app.',
     'Run pip install chatline and then restart the app.',
     'Run pip install chatline and then restart the app.',
     ()),
    ('en-US', '```\nreboot router\nwait 30 seconds\n```\nThen try again.',
     'reboot router, wait 30 seconds. Then try again.',
     'reboot router<break time="300ms" />wait 30 seconds.<break time="300ms" />Then try again.',
     ()),
    ('en-US', 'Check out our menu here: [Menu](https://example.com/menu) ✨',
     'Check out our menu here: Menu.',
     'Check out our menu here: Menu.',
     ('https://example.com/menu',)),
    ('en-US', "![Our storefront](https://example.com/store.jpg)\nWe're at 12 Main Street.",
     "We're at 12 Main Street.",
     "We're at 12 Main Street.",
     ('https://example.com/store.jpg',)),
    ('en-US', 'Your order number is 48213977 and it ships on 12/03/2026.',
     'Your order number is 4 8 2 1 3 9 7 7 and it ships on December 3, 2026.',
     'Your order number is <say-as interpret-as="digits">48213977</say-as> and it ships on December 3, 2026.',
     ()),
    ('en-US', 'Your verification code is 739201.',
     'Your verification code is 7 3 9 2 0 1.',
     'Your verification code is <say-as interpret-as="digits">739201</say-as>.',
     ()),
    ('en-US', "I've booked a table for 4 people on Friday at 7:30 PM. 🎉🎉",
     "I've booked a table for 4 people on Friday at 7:30 PM.",
     "I've booked a table for 4 people on Friday at 7:30 PM.",
     ()),
    ('en-US', 'Please call (555) 987-6543 between 9-5.',
     'Please call 5 5 5, 9 8 7, 6 5 4 3 between 9 to 5.',
     'Please call <say-as interpret-as="telephone">(555) 987-6543</say-as> between 9 to 5.',
     ()),
    ('en-US', '⚠️ *Important:* the pool is closed for maintenance → reopening soon!',
     'Important: the pool is closed for maintenance reopening soon!',
     'Important: the pool is closed for maintenance reopening soon!',
     ()),
    ('en-US', 'Your PIN is 1234. Never share it with anyone.',
     'Your PIN is 1 2 3 4. Never share it with anyone.',
     'Your PIN is <say-as interpret-as="digits">1234</say-as>. Never share it with anyone.',
     ()),
    ('en-US', 'Visit www.example.org/faq for answers, or write to help@example.org.',
     'Visit the link for answers, or write to the email address.',
     'Visit the link for answers, or write to the email address.',
     ('http://www.example.org/faq', 'help@example.org')),
    ('en-US', 'Total: **$1,250.00** for 3 nights (Dec 24–27).',
     'Total: $1,250.00 for 3 nights (Dec 24 to 27).',
     'Total: $1,250.00 for 3 nights (Dec 24 to 27).',
     ()),
    ('en-US', 'Flight UA123 departs at 06:45 from gate B12.',
     'Flight U A 1 2 3 departs at 6:45 AM from gate B12.',
     'Flight U A 1 2 3 departs at 6:45 AM from gate B12.',
     ()),
    ('en-US', '> Note: prices may change.\n\nThe basic plan is $10 a month.',
     'Note: prices may change. The basic plan is $10 a month.',
     'Note: prices may change. The basic plan is $10 a month.',
     ()),
    ('en-GB', 'Your reference is X7K9Q2 — please keep it safe.',
     'Your reference is X 7 K 9 Q 2 — please keep it safe.',
     'Your reference is X 7 K 9 Q 2 — please keep it safe.',
     ()),
    ('en-US', "Sure thing!!! 😂😂 That's ~~expensive~~ a great deal.",
     "Sure thing!!! That's expensive a great deal.",
     "Sure thing!!! That's expensive a great deal.",
     ()),
    ('en-US', 'Steps:\n* Open the app\n* Tap **Settings**\n* Choose *Notifications*',
     'Steps: Open the app, Tap Settings, Choose Notifications.',
     'Steps: Open the app<break time="300ms" />Tap Settings<break time="300ms" />Choose Notifications.',
     ()),
    ('es-ES', '¡Hola! 😊 ¿En qué puedo ayudarle?',
     '¡Hola! ¿En qué puedo ayudarle?',
     '¡Hola! ¿En qué puedo ayudarle?',
     ()),
    ('es-ES', '**Horario:**\n- lun–vie 9–17\n- sáb 10–14',
     'Horario: lunes a viernes 9 a 17, sábado 10 a 14.',
     'Horario: lunes a viernes 9 a 17<break time="300ms" />sábado 10 a 14.',
     ()),
    ('es-ES', 'Su código de reserva es **RES-5521**. Le esperamos el 24/12/2026 a las 21:00.',
     'Su código de reserva es R E S, 5 5 2 1. Le esperamos el 24 de diciembre de 2026 a las 21:00.',
     'Su código de reserva es R E S, 5 5 2 1. Le esperamos el 24 de diciembre de 2026 a las 21:00.',
     ()),
    ('es-ES', 'Puede llamarnos al +34 912 345 678 o escribir a info@ejemplo.es.',
     'Puede llamarnos al más 3 4, 9 1 2, 3 4, 5 6, 7 8 o escribir a la dirección de correo.',
     'Puede llamarnos al <say-as interpret-as="telephone">+34 912 345 678</say-as> o escribir a la dirección de correo.',
     ('info@ejemplo.es',)),
    ('es-ES', 'La tarjeta terminada en 9876 ha sido rechazada. ❌',
     'La tarjeta terminada en 9 8 7 6 ha sido rechazada.',
     'La tarjeta terminada en <say-as interpret-as="digits">9876</say-as> ha sido rechazada.',
     ()),
    ('es-ES', 'Más información en https://ejemplo.es/ayuda 👉',
     'Más información en el enlace.',
     'Más información en el enlace.',
     ('https://ejemplo.es/ayuda',)),
    ('es-MX', 'Tenemos 3 opciones:\n1. Básico\n2. Premium\n3. Empresa',
     'Tenemos 3 opciones: Básico, Premium, Empresa.',
     'Tenemos 3 opciones: Básico<break time="300ms" />Premium<break time="300ms" />Empresa.',
     ()),
    ('es-ES', '| Plato | Precio |\n|---|---|\n| Paella | 18 € |\n| Tortilla | 9 € |',
     'Plato: Paella, Precio: 18 €, Plato: Tortilla, Precio: 9 €.',
     'Plato: Paella, Precio: 18 €<break time="300ms" />Plato: Tortilla, Precio: 9 €.',
     ()),
    ('es-ES', 'Su número de pedido es 5512390.',
     'Su número de pedido es 5 5 1 2 3 9 0.',
     'Su número de pedido es <say-as interpret-as="digits">5512390</say-as>.',
     ()),
    ('de-DE', 'Hallo! 👋 Wie kann ich Ihnen helfen?',
     'Hallo! Wie kann ich Ihnen helfen?',
     'Hallo! Wie kann ich Ihnen helfen?',
     ()),
    ('de-DE', '**Öffnungszeiten:**\n- Mo.–Fr. 9–17 Uhr\n- Sa. 10–14 Uhr',
     'Öffnungszeiten: Montag bis Freitag 9 bis 17 Uhr, Samstag 10 bis 14 Uhr.',
     'Öffnungszeiten: Montag bis Freitag 9 bis 17 Uhr<break time="300ms" />Samstag 10 bis 14 Uhr.',
     ()),
    ('de-DE', 'Ihr Termin ist am 24.12.2026 um 09:30 Uhr bestätigt. ✅',
     'Ihr Termin ist am 24. Dezember 2026 um 9:30 Uhr bestätigt.',
     'Ihr Termin ist am 24. Dezember 2026 um 9:30 Uhr bestätigt.',
     ()),
    ('de-DE', 'Rufen Sie uns an unter 030 12345678 oder schreiben Sie an service@beispiel.de.',
     'Rufen Sie uns an unter 0 3 0, 1 2 3 4 5 6 7 8 oder schreiben Sie an die E-Mail-Adresse.',
     'Rufen Sie uns an unter <say-as interpret-as="telephone">030 12345678</say-as> oder schreiben Sie an die E-Mail-Adresse.',
     ('service@beispiel.de',)),
    ('de-DE', 'Ihre Buchungsnummer lautet **HB-7731**.',
     'Ihre Buchungsnummer lautet H B, 7 7 3 1.',
     'Ihre Buchungsnummer lautet H B, 7 7 3 1.',
     ()),
    ('de-DE', 'Details finden Sie hier: https://beispiel.de/details',
     'Details finden Sie hier.',
     'Details finden Sie hier.',
     ('https://beispiel.de/details',)),
    ('de-DE', '## Zusammenfassung\n\nSie haben *zwei* Tickets für 49,90 € gekauft.',
     'Zusammenfassung. Sie haben zwei Tickets für 49,90 € gekauft.',
     'Zusammenfassung. Sie haben zwei Tickets für 49,90 € gekauft.',
     ()),
    ('de-DE', 'Die Karte mit der Endung **** 5544 wurde belastet.',
     'Die Karte mit der Endung 5 5 4 4 wurde belastet.',
     'Die Karte mit der Endung <say-as interpret-as="digits">5544</say-as> wurde belastet.',
     ()),
    ('de-DE', '1. Tisch reservieren\n2. Speisekarte\n3. Mitarbeiter sprechen',
     'Tisch reservieren, Speisekarte, Mitarbeiter sprechen.',
     'Tisch reservieren<break time="300ms" />Speisekarte<break time="300ms" />Mitarbeiter sprechen.',
     ()),
    ('fr-FR', 'Bonjour ! 😊 Comment puis-je vous aider ?',
     'Bonjour! Comment puis-je vous aider?',
     'Bonjour! Comment puis-je vous aider?',
     ()),
    ('fr-FR', '**Horaires :**\n- lun.–ven. 9–17\n- sam. 10–14',
     'Horaires: lundi à vendredi 9 à 17, samedi 10 à 14.',
     'Horaires: lundi à vendredi 9 à 17<break time="300ms" />samedi 10 à 14.',
     ()),
    ('fr-FR', 'Votre rendez-vous est confirmé le 24/12/2026 à 14:30. 📅',
     'Votre rendez-vous est confirmé le 24 décembre 2026 à 14:30.',
     'Votre rendez-vous est confirmé le 24 décembre 2026 à 14:30.',
     ()),
    ('fr-FR', 'Appelez-nous au 01 23 45 67 89 ou écrivez à contact@exemple.fr.',
     "Appelez-nous au 0 1, 2 3, 4 5, 6 7, 8 9 ou écrivez à l'adresse e-mail.",
     'Appelez-nous au <say-as interpret-as="telephone">01 23 45 67 89</say-as> ou écrivez à l\'adresse e-mail.',
     ('contact@exemple.fr',)),
    ('fr-FR', 'Votre code de réservation est **FR-2290**.',
     'Votre code de réservation est F R, 2 2 9 0.',
     'Votre code de réservation est F R, 2 2 9 0.',
     ()),
    ('fr-FR', 'Voir la carte : [menu du jour](https://exemple.fr/menu) 🍷',
     'Voir la carte: menu du jour.',
     'Voir la carte: menu du jour.',
     ('https://exemple.fr/menu',)),
    ('fr-FR', 'Carte **** 1234 débitée de 35,00 €.',
     'Carte 1 2 3 4 débitée de 35,00 €.',
     'Carte <say-as interpret-as="digits">1234</say-as> débitée de 35,00 €.',
     ()),
    ('fr-CA', 'Merci! Bonne journée 🌞',
     'Merci! Bonne journée.',
     'Merci! Bonne journée.',
     ()),
    ('it-IT', 'Ciao! 😊 Il tuo codice è ZX-9911.',
     'Ciao! Il tuo codice è Z X, 9 9 1 1.',
     'Ciao! Il tuo codice è Z X, 9 9 1 1.',
     ()),
    ('en-US', '😊',
     '',
     '',
     ()),
    ('en-US', 'https://example.com/only-a-link',
     '',
     '',
     ('https://example.com/only-a-link',)),
]


def _say_body(text: str, language: str, voice: str) -> str:
    """The inside of the <Say> Twilio gets for `text` with an SSML voice."""
    spoken = render(text, language, speaks_ssml(voice), voice=voice)
    document = twiml.say_and_hang_up("", speech=spoken.parts, voice=voice, language=language)
    found = re.search(r"<Say[^>]*>(.*)</Say>", document)
    return found.group(1) if found else ""


def test_the_corpus_is_big_and_in_several_languages():
    assert len(CORPUS) >= 50
    assert {language[:2] for language, *_ in CORPUS} >= {"en", "es", "de", "fr"}


@pytest.mark.parametrize("language, text, plain, ssml, links", CORPUS, ids=[c[1][:40] for c in CORPUS])
def test_what_the_caller_hears(language, text, plain, ssml, links):
    heard = render(text, language)
    assert heard.text == plain
    assert all(isinstance(part, str) for part in heard.parts)  # a basic voice gets no tags
    assert heard.links == links
    assert _say_body(text, language, "Polly.Joanna") == ssml
    assert render(text, language, True).links == links


def test_google_voices_spell_digits_as_characters_and_polly_as_digits():
    text = "Your verification code is 739201."
    assert _say_body(text, "en-US", "Google.en-US-Neural2-F") == (
        'Your verification code is <say-as interpret-as="characters">739201</say-as>.')
    assert _say_body(text, "en-US", "Polly.Joanna-Neural") == (
        'Your verification code is <say-as interpret-as="digits">739201</say-as>.')
    assert not speaks_ssml("man") and not speaks_ssml(None) and not speaks_ssml("alice")


def test_the_chatbots_text_is_never_changed_and_special_characters_stay_escaped():
    text = "Fish & chips <fresh> — **today** only: https://example.com/menu"
    spoken = render(text, "en-US", True)
    assert text == "Fish & chips <fresh> — **today** only: https://example.com/menu"
    document = twiml.say_and_hang_up("", speech=spoken.parts)
    assert "Fish &amp; chips &lt;fresh&gt; — today only.</Say>" in document


def test_a_list_is_one_sentence_with_pauses():
    spoken = render("Pick one:\n- red\n- green\n- blue", "en-US", True)
    assert spoken.parts == ("Pick one: red", Pause(), "green", Pause(), "blue.")
    assert render("Pick one:\n- red\n- green\n- blue", "en-US").text == "Pick one: red, green, blue."


def test_phone_numbers_are_telephone_runs_in_ssml():
    spoken = render("Call +1 555 123 4567 now", "en-US", True)
    assert spoken.parts == ("Call ", SayAs("+1 555 123 4567", "telephone"), " now.")


@pytest.mark.parametrize("language, sent, count, sentence", [
    ("en-US", True, 1, "I'm sending you the link by text message."),
    ("en-GB", False, 1, "I couldn't send you the link by text message."),
    ("es-ES", True, 2, "Le estoy enviando los enlaces por SMS."),
    ("de-DE", False, 1, "Ich konnte Ihnen den Link nicht per SMS schicken."),
    ("fr-FR", True, 1, "Je vous envoie le lien par SMS."),
    ("ja-JP", True, 1, "I'm sending you the link by text message."),  # no sentence in Japanese yet: English
])
def test_the_sentence_about_links_is_in_the_answers_language(language, sent, count, sentence):
    assert link_note(language, sent, count) == sentence


def test_then_appends_the_menu_or_the_note_after_the_words():
    spoken = render("See https://example.com/a for the menu", "en-US")
    assert spoken.then(link_note("en-US", True)).text == (
        "See the link for the menu. I'm sending you the link by text message.")
    assert render("Menu: https://example.com/a", "en-US").then(link_note("en-US", False)).text == (
        "Menu. I couldn't send you the link by text message.")
    assert render("https://example.com/a", "en-US").parts == ()  # a link alone: only the sentence about it
    assert render("", "en-US").then("Hello.").parts == ("Hello.",)


from hypothesis import given, settings, strategies as st  # noqa: E402

_chat_text = st.lists(st.sampled_from(list("ab1234567890 -–:./*_#|`>[]()!?@+\n😊👍🏽&<\"'") + [
    " https://x.io/a ", " info@x.io ", "**", "- ", "1. ", "| a | b |\n|---|---|\n", "2026-12-24", "24.12.2026",
    "19:30", "+1 555 123 4567", "BK-4821", "🇩🇪", "⭐️"]), max_size=30).map("".join)


@settings(max_examples=300, deadline=None)
@given(_chat_text, st.sampled_from(["en-US", "es-ES", "de-DE", "fr-FR", "ja-JP", "xx", ""]), st.booleans())
def test_any_chat_text_renders_to_speakable_twiml_without_markup_or_emoji(text, language, ssml):
    spoken = render(text, language, ssml)
    document = twiml.say_and_hang_up("", speech=spoken.parts, voice="Polly.Joanna" if ssml else None)
    assert document.endswith("<Hangup /></Response>")
    said = spoken.text
    assert not any(mark in said for mark in ("**", "`", "😊", "👍", "https://", "@x.io"))
    assert all(part for part in spoken.parts) and not isinstance(spoken.parts[-1:] and spoken.parts[-1], Pause)
