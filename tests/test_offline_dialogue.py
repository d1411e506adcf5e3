"""The offline recognizer (STT_PROVIDER=sphinx) hears the committed recordings through the real Media Stream and gunicorn."""
from __future__ import annotations

from tests.test_phone_dialogue import GREETING, place, updates, wait_until


def test_offline_dialogue_one_and_several_word_phrases(twilio, chatbot, start_gateway):
    gateway = start_gateway(STT_PROVIDER="sphinx")
    call = place(twilio, ["hello", "good", "book_table", "for_four_people", "goodbye"])
    assert call.wait_ended(timeout=90), call.transcript()
    assert [m.replace(" ", "") for m in chatbot.messages()] == [
        "hello", "good", "bookatable", "forfourpeople", "goodbye"], call.transcript()
    said = call.said()
    assert said[0] == GREETING and said[1] == "Hi, how are you?"
    assert said[3] == "For how many people?" and said[4] == "Your table for four is booked."
    assert said[-1] == "Goodbye! Thanks for calling." and updates(twilio, call)[-1].endswith("<Hangup /></Response>")
    assert "speech recognition: sphinx" in gateway.logs() and "Traceback" not in gateway.logs()


def test_default_without_google_credentials_is_the_offline_recognizer(twilio, chatbot, start_gateway, tmp_path):
    gateway = start_gateway(STT_PROVIDER="", HOME=str(tmp_path), GOOGLE_APPLICATION_CREDENTIALS="")
    assert wait_until(lambda: "speech recognition: sphinx (no Google credentials were found" in gateway.logs(), 10)
    call = place(twilio, ["hello", "goodbye"])
    assert call.wait_ended(timeout=60), call.transcript()
    assert call.said()[-1] == "Goodbye! Thanks for calling."


def test_recognizer_that_cannot_start_hands_the_call_to_gather(twilio, chatbot, start_gateway):
    # The bundled offline model is English only: a French line cannot start it; the call must not go deaf.
    gateway = start_gateway(STT_PROVIDER="sphinx", LANGUAGE="fr-FR")
    call = place(twilio, ["hello", "goodbye"])
    assert call.wait_ended(timeout=60), call.transcript()
    assert "Sorry, I'm having trouble right now. Please try again in a moment." in call.said()
    assert chatbot.messages() == ["hello", "goodbye"] and call.said()[-1] == "Goodbye! Thanks for calling."
    assert "switching the call to <Gather>" in gateway.logs()
