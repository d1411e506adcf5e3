"""TwiML documents, checked as exact XML."""
from gateway.twilio import twiml
from gateway.chatbots.reply import Reply

HEAD = '<?xml version="1.0" encoding="UTF-8"?>'
LISTEN = "https://gw.example/listen"
DTMF = "https://gw.example/dtmf"
# The keep-alive <Say>/<Pause> sit in a keys-only <Gather>: one-way Media Streams carry no DTMF.
KEYS = '<Gather action="https://gw.example/dtmf" finishOnKey="#" input="dtmf" method="POST" timeout="5">'
BACK = '<Redirect method="POST">https://gw.example/listen</Redirect></Response>'


def test_incoming_call_starts_stream_greets_and_keeps_listening():
    document = twiml.incoming_call("wss://gw.example/stream", LISTEN, "Hello!", {"callSid": "CA1", "caller": "+1555"},
                                   pause_seconds=20, dtmf_url=DTMF)
    assert document == (
        HEAD + '<Response><Start><Stream track="inbound_track" url="wss://gw.example/stream">'
        '<Parameter name="callSid" value="CA1" /><Parameter name="caller" value="+1555" /></Stream></Start>'
        + KEYS + '<Say language="en-US">Hello!</Say><Pause length="20" /></Gather>' + BACK)


def test_no_greeting_means_no_say():
    document = twiml.incoming_call("wss://g/stream", LISTEN, "", {}, dtmf_url=DTMF)
    assert "<Say" not in document and "<Redirect" in document and "<Gather" in document


def test_reply_says_text_then_keeps_listening():
    assert twiml.reply(Reply("Hi, how are you?"), LISTEN, pause_seconds=30, dtmf_url=DTMF) == (
        HEAD + '<Response>' + KEYS + '<Say language="en-US">Hi, how are you?</Say><Pause length="30" /></Gather>'
        + BACK)


def test_keys_timeout_and_no_pause_when_the_gather_timeout_is_the_whole_wait():
    assert twiml.reply(Reply("Are you still there?"), LISTEN, pause_seconds=0, dtmf_url=DTMF, dtmf_timeout=3) == (
        HEAD + '<Response><Gather action="https://gw.example/dtmf" finishOnKey="#" input="dtmf" method="POST" '
        'timeout="3"><Say language="en-US">Are you still there?</Say></Gather>' + BACK)


def test_hangup_and_transfer_take_no_keys():
    for answer in (Reply("Bye", "hangup"), Reply("Connecting", "transfer", "+15550001111")):
        assert "<Gather" not in twiml.reply(answer, LISTEN, dtmf_url=DTMF)


def test_without_a_dtmf_url_the_keep_alive_is_a_bare_pause():
    assert twiml.reply(Reply("Hi"), LISTEN, pause_seconds=30) == (
        HEAD + '<Response><Say language="en-US">Hi</Say><Pause length="30" />' + BACK)


def test_reply_escapes_special_characters_so_the_caller_hears_them():
    document = twiml.reply(Reply("Fish & chips < \"steak\" > 'pie'", "hangup"), LISTEN)
    assert document == (HEAD + '<Response><Say language="en-US">Fish &amp; chips &lt; "steak" &gt; \'pie\'</Say>'
                        '<Hangup /></Response>')


def test_hangup_and_transfer():
    assert twiml.reply(Reply("Bye", "hangup"), LISTEN).endswith("<Say language=\"en-US\">Bye</Say><Hangup /></Response>")
    assert twiml.reply(Reply("Connecting", "transfer", "+15550001111"), LISTEN).endswith(
        '<Say language="en-US">Connecting</Say><Dial><Number>+15550001111</Number></Dial></Response>')
    assert twiml.reply(Reply("Connecting", "transfer", "+15550001111"), LISTEN, transfer_url="https://gw.example/transfer",
                       caller_id="+15557654321", dial_timeout=20).endswith(
        '<Dial action="https://gw.example/transfer" callerId="+15557654321" method="POST" timeout="20">'
        '<Number>+15550001111</Number></Dial></Response>')


def test_voice_and_language_are_passed_to_say():
    document = twiml.reply(Reply("Hola"), LISTEN, language="es-ES", voice="Polly.Lucia")
    assert '<Say language="es-ES" voice="Polly.Lucia">Hola</Say>' in document


def test_listen_and_say_and_hang_up():
    assert twiml.listen(LISTEN, pause_seconds=5, dtmf_url=DTMF) == (
        HEAD + '<Response>' + KEYS + '<Pause length="5" /></Gather>' + BACK)
    assert twiml.say_and_hang_up("Sorry") == HEAD + '<Response><Say language="en-US">Sorry</Say><Hangup /></Response>'


def test_reply_too_long_for_a_call_update_is_shortened():
    document = twiml.reply(Reply("&" * 2000), LISTEN)  # every & becomes &amp;: 10,000 characters as is
    assert len(document) <= twiml.MAX_UPDATE_CHARS and "&amp;&amp;" in document and document.endswith("</Response>")


def test_gather_prompt_and_reply():
    assert twiml.gather("Hi & bye", "https://gw.example/gather", ["good", "bad"], timeout=4) == (
        HEAD + '<Response><Gather action="https://gw.example/gather" actionOnEmptyResult="true" hints="good, bad" '
        'input="speech dtmf" language="en-US" method="POST" profanityFilter="true" speechTimeout="auto" timeout="4">'
        '<Say language="en-US">Hi &amp; bye</Say></Gather></Response>')
    assert twiml.gather_reply(Reply("Bye", "hangup"), "https://gw.example/gather") == (
        HEAD + '<Response><Say language="en-US">Bye</Say><Hangup /></Response>')
    assert "<Gather" in twiml.gather_reply(Reply("Hi", hints=("good",)), "https://gw.example/gather")


def test_a_protected_prompt_turns_gathers_barge_in_off():
    protected = twiml.gather_reply(Reply("Terms apply.", barge_in=False), "https://gw.example/gather", timeout=4)
    assert protected == (
        HEAD + '<Response><Gather action="https://gw.example/gather" actionOnEmptyResult="true" bargeIn="false" '
        'input="speech dtmf" language="en-US" method="POST" profanityFilter="true" speechTimeout="auto" timeout="4">'
        '<Say language="en-US">Terms apply.</Say></Gather></Response>')
    assert 'bargeIn="false"' in twiml.gather_reply(Reply("Hi"), "https://gw.example/gather", barge_in=False)
    assert "bargeIn" not in twiml.gather_reply(Reply("Hi"), "https://gw.example/gather", barge_in=True)


def test_handoff_says_a_message_then_redirects():
    assert twiml.handoff("https://gw.example/resume?state=abc", "One moment, please.") == (
        HEAD + '<Response><Say language="en-US">One moment, please.</Say>'
        '<Redirect method="POST">https://gw.example/resume?state=abc</Redirect></Response>')
    assert twiml.handoff("https://gw.example/resume?a=1&b=2", pause_seconds=1) == (
        HEAD + '<Response><Pause length="1" /><Redirect method="POST">https://gw.example/resume?a=1&amp;b=2</Redirect>'
        '</Response>')


def test_reply_can_start_a_stream_first():
    document = twiml.reply(Reply("Hi, how are you?"), LISTEN, pause_seconds=25, dtmf_url=DTMF,
                           stream=("wss://gw.example/stream", {"callSid": "CA1"}))
    assert document == (
        HEAD + '<Response><Start><Stream track="inbound_track" url="wss://gw.example/stream">'
        '<Parameter name="callSid" value="CA1" /></Stream></Start>'
        + KEYS + '<Say language="en-US">Hi, how are you?</Say><Pause length="25" /></Gather>' + BACK)


def test_first_sentence_is_said_then_the_rest_is_fetched():
    assert twiml.first_sentence("Fish & chips, <fresh>.", "https://gw.example/continue?answer=ab12",
                                voice="Polly.Joanna") == (
        HEAD + '<Response><Say language="en-US" voice="Polly.Joanna">Fish &amp; chips, &lt;fresh&gt;.</Say>'
        '<Redirect method="POST">https://gw.example/continue?answer=ab12</Redirect></Response>')


def test_a_conversationrelay_reply_says_plays_and_sends_tones_in_the_bots_order():
    from gateway.chatbots import relay_protocol as rp
    answer = rp.relay_reply([rp.Say("Hello & welcome."), rp.Play("https://x.example/a.mp3", 2),
                             rp.SendDigits("12w#"), rp.Say("Hola.", "es-ES")])
    assert twiml.reply(answer, LISTEN, pause_seconds=30, dtmf_url=DTMF, voice="Polly.Joanna") == (
        HEAD + '<Response>' + KEYS + '<Say language="en-US" voice="Polly.Joanna">Hello &amp; welcome.</Say>'
        '<Play loop="2">https://x.example/a.mp3</Play><Play digits="12w#" /><Say language="es-ES">Hola.</Say>'
        '<Pause length="30" /></Gather>' + BACK)


def test_a_conversationrelay_end_hangs_up_after_the_pending_text():
    from gateway.chatbots import relay_protocol as rp
    answer = rp.relay_reply([rp.Say("Goodbye.")], ended=True)
    assert twiml.reply(answer, LISTEN, dtmf_url=DTMF) == (
        HEAD + '<Response><Say language="en-US">Goodbye.</Say><Hangup /></Response>')


def test_a_conversationrelay_handoff_runs_the_twiml_the_handoff_url_answered():
    from gateway.chatbots import relay_protocol as rp
    handoff = '<?xml version="1.0"?><Response><Dial timeout="20"><Number>+15550001111</Number></Dial></Response>'
    answer = rp.relay_reply([rp.Say("Transferring you.")], ended=True, handoff_twiml=handoff)
    assert twiml.reply(answer, LISTEN, dtmf_url=DTMF) == (
        HEAD + '<Response><Say language="en-US">Transferring you.</Say>'
        '<Dial timeout="20"><Number>+15550001111</Number></Dial></Response>')
    alone = rp.relay_reply([], ended=True, handoff_twiml='<Response><Enqueue>support</Enqueue></Response>')
    assert twiml.reply(alone, LISTEN) == HEAD + '<Response><Enqueue>support</Enqueue></Response>'
# ---- the phone-text layer's speech and a chatbot's audio ----------------------------------------------------------
from gateway.phone import Pause, SayAs, render  # noqa: E402


def test_reply_speech_parts_become_ssml_inside_say_and_audio_plays_first_inside_the_keys_gather():
    speech = ("Call ", SayAs("+1 555 123 4567", "telephone"), " & say", Pause(), "bye.")
    document = twiml.reply(Reply("**Call** +1 555 123 4567 & say\n- bye", audio="https://cdn.example.com/a.mp3"),
                           LISTEN, dtmf_url=DTMF, voice="Polly.Joanna", speech=speech)
    assert document == (
        HEAD + '<Response>' + KEYS + '<Play>https://cdn.example.com/a.mp3</Play>'
        '<Say language="en-US" voice="Polly.Joanna">Call <say-as interpret-as="telephone">+1 555 123 4567</say-as>'
        ' &amp; say<break time="300ms" />bye.</Say><Pause length="30" /></Gather>' + BACK)


def test_plain_speech_replaces_the_text_and_no_speech_keeps_the_old_document():
    answer = Reply("**Sure!** 😊")
    assert twiml.reply(answer, LISTEN, pause_seconds=30, speech=render(answer.text).parts) == (
        HEAD + '<Response><Say language="en-US">Sure!</Say><Pause length="30" />' + BACK)
    assert twiml.reply(answer, LISTEN, pause_seconds=30) == (
        HEAD + '<Response><Say language="en-US">**Sure!** 😊</Say><Pause length="30" />' + BACK)


def test_audio_alone_is_played_with_no_empty_say():
    assert twiml.reply(Reply("", audio="https://cdn.example.com/a.mp3"), LISTEN, speech=()) == (
        HEAD + '<Response><Play>https://cdn.example.com/a.mp3</Play><Pause length="30" />' + BACK)


def test_gather_reply_plays_audio_and_says_speech_inside_the_speech_gather():
    answer = Reply("Hi", hints=("yes",), audio="https://cdn.example.com/a.mp3")
    assert twiml.gather_reply(answer, "https://gw.example/gather", timeout=4, speech=("Hi", Pause(), "there")) == (
        HEAD + '<Response><Gather action="https://gw.example/gather" actionOnEmptyResult="true" hints="yes" '
        'input="speech dtmf" language="en-US" method="POST" profanityFilter="true" speechTimeout="auto" timeout="4">'
        '<Play>https://cdn.example.com/a.mp3</Play><Say language="en-US">Hi<break time="300ms" />there</Say>'
        '</Gather></Response>')
    assert twiml.gather_reply(Reply("Bye", "hangup"), "https://gw.example/gather", speech=("Good", Pause(), "bye")) == (
        HEAD + '<Response><Say language="en-US">Good<break time="300ms" />bye</Say><Hangup /></Response>')


def test_first_sentence_and_say_and_hang_up_take_speech():
    assert twiml.first_sentence("x", "https://gw.example/continue", speech=("Hello", Pause(), "world.")) == (
        HEAD + '<Response><Say language="en-US">Hello<break time="300ms" />world.</Say>'
        '<Redirect method="POST">https://gw.example/continue</Redirect></Response>')
    assert twiml.say_and_hang_up("x", speech=("Bye.",)) == (
        HEAD + '<Response><Say language="en-US">Bye.</Say><Hangup /></Response>')


def test_long_speech_is_shortened_to_fit_a_call_update():
    speech = tuple(part for n in range(400) for part in (f"item {n} & more", Pause()))
    document = twiml.reply(Reply("x"), LISTEN, speech=speech, dtmf_url=DTMF)
    assert len(document) <= twiml.MAX_UPDATE_CHARS and "item 0 &amp; more" in document
    assert document.endswith(BACK)


def test_a_greeting_can_be_speech_after_audio():
    document = twiml.incoming_call("wss://gw.example/stream", LISTEN, "**Hi**", {}, pause_seconds=20, dtmf_url=DTMF,
                                   voice="Polly.Joanna", speech=("Hi", Pause(), "there."),
                                   audio="https://cdn.example.com/jingle.mp3")
    assert (KEYS + '<Play>https://cdn.example.com/jingle.mp3</Play><Say language="en-US" voice="Polly.Joanna">Hi'
            '<break time="300ms" />there.</Say><Pause length="20" /></Gather>' + BACK) in document
def test_stream_can_carry_both_tracks():
    """both_tracks also streams what the caller hears (the outbound track), so the gateway can measure its prompts."""
    document = twiml.incoming_call("wss://gw.example/stream", LISTEN, "Hello!", {"callSid": "CA1"},
                                   pause_seconds=20, dtmf_url=DTMF, stream_track="both_tracks")
    assert document == (
        HEAD + '<Response><Start><Stream track="both_tracks" url="wss://gw.example/stream">'
        '<Parameter name="callSid" value="CA1" /></Stream></Start>'
        + KEYS + '<Say language="en-US">Hello!</Say><Pause length="20" /></Gather>' + BACK)
    moved = twiml.reply(Reply("Hi."), LISTEN, pause_seconds=25, dtmf_url=DTMF,
                        stream=("wss://gw.example/stream", {"callSid": "CA1"}), stream_track="both_tracks")
    assert moved.startswith(HEAD + '<Response><Start><Stream track="both_tracks" url="wss://gw.example/stream">')


def test_an_unknown_stream_track_is_refused():
    import pytest
    with pytest.raises(ValueError, match="outbound_only"):
        twiml.incoming_call("wss://g/stream", LISTEN, "Hi", {}, stream_track="outbound_only")


def test_while_options_hold_one_key_ends_the_gather_in_stream_and_gather_modes():
    options = (("Book a table", "/book"), ("Hours", "/hours"))
    stream = twiml.reply(Reply("Pick one", options=options), LISTEN, dtmf_url=DTMF, speech=("Pick one.",))
    keys = '<Gather action="' + DTMF + '" finishOnKey="#" input="dtmf" method="POST" numDigits="1" timeout="5">'
    assert keys in stream
    gather = twiml.gather_reply(Reply("Pick one", options=options), "https://gw.example/gather", speech=("Pick.",))
    assert 'numDigits="1"' in gather and 'numDigits' not in twiml.gather_reply(Reply("Hi"), "https://gw.example/g")
    assert twiml.one_key(options * 5) is None  # past nine options keys cannot name them all: a key is an entry
