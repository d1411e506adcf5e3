"""ConversationRelay's messages, built and read with no I/O: what a bot written for Twilio receives and may send."""
import json

from gateway.chatbots import relay_protocol as rp


def test_setup_carries_every_field_twilio_sends():
    setup = json.loads(rp.setup_message("VX1", "CA1", "AC1", "+15551230001", "+15550009999",
                                        custom_parameters={"tier": "gold"}, forwarded_from="+15550000000"))
    assert setup == {"type": "setup", "sessionId": "VX1", "callSid": "CA1", "parentCallSid": "", "accountSid": "AC1",
                     "from": "+15551230001", "to": "+15550009999", "forwardedFrom": "+15550000000", "callerName": "",
                     "direction": "inbound", "callType": "PSTN", "callStatus": "IN-PROGRESS",
                     "customParameters": {"tier": "gold"}}
    assert json.loads(rp.setup_message("VX1", "CA1", "AC1", "", ""))["customParameters"] == {}


def test_prompt_dtmf_and_interrupt_shapes():
    assert json.loads(rp.prompt_message("book a table", "en-US")) == {
        "type": "prompt", "voicePrompt": "book a table", "lang": "en-US", "last": True}
    assert json.loads(rp.dtmf_message("5")) == {"type": "dtmf", "digit": "5"}
    assert json.loads(rp.interrupt_message("Life is a complex", 460.7)) == {
        "type": "interrupt", "utteranceUntilInterrupt": "Life is a complex", "durationUntilInterruptMs": 460}


def test_the_bots_messages_become_typed_events():
    assert rp.parse_bot_message('{"type":"text","token":"Hi","last":false,"lang":"es-ES","interruptible":false}') \
        == rp.Text("Hi", False, "es-ES", False, None)
    assert rp.parse_bot_message('{"type":"play","source":"https://a.example/x.mp3","loop":3}') == rp.Play(
        "https://a.example/x.mp3", 3)
    assert rp.parse_bot_message('{"type":"play","source":"https://a.example/x.mp3"}').loop == 1
    assert rp.parse_bot_message('{"type":"sendDigits","digits":"9www4085551212"}') == rp.SendDigits(
        "9www4085551212")
    assert rp.parse_bot_message('{"type":"language","ttsLanguage":"sv-SE","transcriptionLanguage":"en-US"}') \
        == rp.Language("sv-SE", "en-US")
    assert rp.parse_bot_message('{"type":"end","handoffData":"{\\"reason\\":\\"agent\\"}"}') == rp.End(
        '{"reason":"agent"}')
    assert rp.parse_bot_message('{"type":"end"}') == rp.End(None)


def test_bad_frames_are_invalid_events_never_exceptions():
    for frame in ("{not json", "[1, 2]", '"text"', '{"type":"dance"}', '{"token":"no type"}', b"\x00\x01",
                  '{"type":"text"}', '{"type":"text","token":5}', '{"type":"play","source":"ftp://x"}',
                  '{"type":"play","source":"https://x","loop":-1}', '{"type":"sendDigits","digits":"12a"}',
                  '{"type":"language"}', '{"type":"language","ttsLanguage":"not a tag"}',
                  '{"type":"text","token":"x","last":"yes"}', "[" * 100000, "{" + '"a":' * 5000):
        event = rp.parse_bot_message(frame)
        assert isinstance(event, rp.Invalid), frame[:40]
    assert "dance" in rp.parse_bot_message('{"type":"dance"}').reason


def test_sentences_are_handed_out_as_soon_as_they_are_complete():
    assembler = rp.SentenceAssembler()
    assert assembler.add("Sure") == []
    assert assembler.add("") == []
    assert assembler.add(".") == []  # the period may still be part of "3.5": a space must follow
    assert assembler.add(" What") == ["Sure."]
    assert assembler.add(" time would") == []
    assert assembler.add(" suit you? I have 3.5 hours! Or") == ["What time would suit you?", "I have 3.5 hours!"]
    assert assembler.flush() == "Or"
    assert assembler.flush() is None


def test_an_interrupted_sentence_is_forgotten():
    assembler = rp.SentenceAssembler()
    assembler.add("Our opening hours are")
    assembler.clear()
    assert assembler.add("Yes? ") == ["Yes?"]


def test_a_reply_joins_its_sentences_and_is_protected_when_a_part_asks():
    reply = rp.relay_reply([rp.Say("One."), rp.Play("https://a.example/x.mp3"), rp.Say("Two.", interruptible=False)])
    assert reply.text == "One. Two." and reply.barge_in is False and reply.action_type is None
    assert rp.relay_reply([rp.Say("Bye.")], ended=True).action_type == "hangup"
    handed = rp.relay_reply([], ended=True, handoff_twiml="<Response/>")
    assert handed.action_type is None and handed.ended


def test_replies_queued_behind_a_sentence_go_out_as_one():
    greeting = rp.relay_reply([rp.Say("Welcome.")])
    switch = rp.relay_reply([], tts_language="es-ES", transcription_language="es-ES")
    goodbye = rp.relay_reply([rp.Say("Adiós.", interruptible=False)], ended=True, handoff_twiml="<Response/>")
    one = rp.merged([greeting, switch, goodbye])
    assert one.parts == (rp.Say("Welcome."), rp.Say("Adiós.", interruptible=False)) and one.text == "Welcome. Adiós."
    assert (one.tts_language, one.transcription_language, one.ended, one.handoff_twiml) == (
        "es-ES", "es-ES", True, "<Response/>")
    assert one.barge_in is False and one.action_type is None
    assert rp.merged([greeting]).action_type is None and not rp.merged([greeting]).ended
