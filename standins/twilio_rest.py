"""The stand-in's REST API: the 2010-04-01 Calls resource and its Streams subresource, with Twilio's auth, JSON
shapes and error codes."""
from __future__ import annotations

import hmac
import logging
import re
import time
from email.utils import formatdate
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from standins.twilio_webhooks import new_sid

if TYPE_CHECKING:
    # standins.twilio.TwilioStandIn, which serves this app: not imported back, so the two form no import cycle.
    from typing import Any as TwilioStandIn

log = logging.getLogger(__name__)

TWIML_MAX_CHARS = 4000  # longer Twiml parameters are refused with error 32018
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
SMS_REFUSALS = {21211: "Invalid 'To' Phone Number", 21602: "Message body is required.",
                21606: "The 'From' phone number provided is not a valid message-capable Twilio phone number for this "
                       "destination.",
                21610: "Attempt to send to unsubscribed recipient",
                21614: "'To' number is not a valid mobile number"}
_FAULTS = {500: (20500, "An internal server error has occurred"), 429: (20429, "Too Many Requests"),
           503: (20503, "Service unavailable")}


def twilio_error(status: int, code: int, message: str, **extra: object) -> Response:
    """A Twilio-style JSON error body (the twilio SDK turns it into TwilioRestException)."""
    body = {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status, **extra}
    response = jsonify(body)
    response.status_code = status
    return response


def _absolute_http(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def create_rest_app(standin: TwilioStandIn) -> Flask:
    """Build the Flask app serving the REST API for `standin`."""
    app = Flask("twilio_standin_rest")
    base = "/2010-04-01/Accounts/<account_sid>"

    @app.before_request
    def authenticate():
        auth = request.authorization
        ok = (auth is not None and auth.type == "basic"
              and hmac.compare_digest(auth.username or "", standin.account_sid)
              and hmac.compare_digest(auth.password or "", standin.auth_token))
        if not ok:
            response = twilio_error(401, 20003, "Authenticate",
                                    detail="Your AccountSid or AuthToken was incorrect.")
            response.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
            return response
        if (request.view_args or {}).get("account_sid", standin.account_sid) != standin.account_sid:
            return not_found()
        return None

    @app.after_request
    def remember(response: Response) -> Response:
        standin._remember({"method": request.method, "path": request.path, "form": request.form.to_dict(),
                           "time": time.time(), "status": response.status_code})
        return response

    @app.errorhandler(404)
    def not_found(error: object = None) -> Response:
        return twilio_error(404, 20404, f"The requested resource {request.path} was not found")

    @app.errorhandler(405)
    def not_allowed(error: object = None) -> Response:
        return twilio_error(405, 20004, "Method not allowed")

    @app.errorhandler(Exception)
    def crashed(error: Exception) -> Response:
        if isinstance(error, HTTPException):  # e.g. a malformed form body: the client's fault, not ours
            return twilio_error(error.code or 400, 20000 + (error.code or 400), error.description or error.name)
        log.exception("twilio stand-in: REST %s %s failed", request.method, request.path)
        return twilio_error(500, 20500, "An internal server error has occurred")

    @app.get(f"{base}/Calls.json")
    def list_calls(account_sid: str) -> Response:
        calls = [call.resource() for call in standin.calls]
        uri = f"/2010-04-01/Accounts/{account_sid}/Calls.json"
        return jsonify({"calls": calls, "end": max(len(calls) - 1, 0), "first_page_uri": uri, "next_page_uri": None,
                        "page": 0, "page_size": 50, "previous_page_uri": None, "start": 0, "uri": uri})

    @app.post(f"{base}/Calls.json")
    def create_call(account_sid: str) -> Response:
        form = request.form
        if not form.get("To"):
            return twilio_error(400, 21201, "No 'To' number is specified")
        if not form.get("From"):
            return twilio_error(400, 21213, "No 'From' number is specified")
        if not form.get("Url") and not form.get("Twiml"):  # the stand-in has no TwiML Apps (ApplicationSid)
            return twilio_error(400, 21205, "Either a 'Url' or 'Twiml' parameter is required")
        problem = _check_instructions(form)
        if problem is not None:
            return problem
        _, created = standin._create_call(
            to=form["To"], from_=form["From"], url=form.get("Url"), method=form.get("Method") or "POST",
            twiml=form.get("Twiml"), status_callback=form.get("StatusCallback"),
            status_callback_method=form.get("StatusCallbackMethod") or "POST")
        response = jsonify(created)
        response.status_code = 201
        return response

    @app.get(f"{base}/Calls/<call_sid>.json")
    def fetch_call(account_sid: str, call_sid: str) -> Response:
        call = standin.get_call(call_sid)
        return jsonify(call.resource()) if call else not_found()

    @app.post(f"{base}/Calls/<call_sid>.json")
    def update_call(account_sid: str, call_sid: str) -> Response:
        call = standin.get_call(call_sid)
        if call is None:
            return not_found()
        fault = standin._take_fault()
        if fault is not None:
            code, message = _FAULTS.get(fault, (20000 + fault, "Injected fault"))
            call.record("update-rejected", fault)
            return twilio_error(fault, code, message)
        form = request.form.to_dict()
        problem = _check_instructions(form)
        if problem is not None:
            return problem
        if form.get("Status") not in (None, "completed", "canceled"):
            return twilio_error(400, 21218, f"Invalid Status '{form['Status']}'")
        if not call.request_update(form):
            return twilio_error(400, 21220, "Call is not in-progress. Cannot redirect.")
        return jsonify(call.resource())

    @app.post(f"{base}/Calls/<call_sid>/Streams.json")
    def create_stream(account_sid: str, call_sid: str) -> Response:
        """Start a one-way Media Stream on a live call, as <Start><Stream> would, without touching its TwiML."""
        call = standin.get_call(call_sid)
        if call is None:
            return not_found()
        form = request.form.to_dict()
        url = form.get("Url", "")
        if urlsplit(url).scheme not in ("wss", "ws") or not urlsplit(url).netloc:
            return twilio_error(400, 21205, f"Url is not a valid URL: {url}")
        parameters = {form[f"Parameter{n}.Name"]: form.get(f"Parameter{n}.Value", "")
                      for n in range(1, 100) if form.get(f"Parameter{n}.Name")}
        track = form.get("Track") or "inbound_track"
        if track not in ("inbound_track", "outbound_track", "both_tracks"):
            return twilio_error(400, 21205, f"Track is not valid: {track}")
        stream = call.start_stream(url, form.get("Name"), parameters, track)
        if stream is None:
            return twilio_error(400, 21220, "Call is not in-progress. Cannot start a stream.")
        response = jsonify({"sid": stream.stream_sid, "account_sid": account_sid, "call_sid": call_sid,
                            "name": form.get("Name"), "status": "in-progress",
                            "date_updated": call.resource()["date_updated"],
                            "uri": f"/2010-04-01/Accounts/{account_sid}/Calls/{call_sid}/Streams/"
                                   f"{stream.stream_sid}.json"})
        response.status_code = 201
        return response

    @app.post(f"{base}/Messages.json")
    def create_message(account_sid: str) -> Response:
        """Send a text message as the Messages resource does: To, From and Body checked, Twilio's refusals."""
        if standin.messages_delay:
            time.sleep(standin.messages_delay)
        form = request.form
        to, from_, body = form.get("To", ""), form.get("From", ""), form.get("Body", "")
        if not to:
            return twilio_error(400, 21604, "A 'To' phone number is required.")
        if not from_ and not form.get("MessagingServiceSid"):
            return twilio_error(400, 21603, "A 'From' phone number is required.")
        code = (21211 if not E164.match(to) else 21602 if not body.strip()
                else 21606 if standin.sms_senders is not None and from_ not in standin.sms_senders
                else standin.sms_refusals.get(to))
        if code is not None:
            return twilio_error(400, code, SMS_REFUSALS.get(code, "Message refused"))
        sid, now = new_sid("SM"), formatdate(usegmt=True)
        uri = f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json"
        message = {"sid": sid, "account_sid": account_sid, "to": to, "from": from_, "body": body,
                   "status": "queued", "direction": "outbound-api", "api_version": "2010-04-01",
                   "num_segments": str(max(1, -(-len(body) // 153))), "num_media": "0", "price": None,
                   "price_unit": "USD", "error_code": None, "error_message": None, "messaging_service_sid": None,
                   "date_created": now, "date_updated": now, "date_sent": None, "uri": uri,
                   "subresource_uris": {"media": uri.replace(".json", "/Media.json")}}
        standin._take_message(message)
        response = jsonify(message)
        response.status_code = 201
        return response

    return app


def _check_instructions(form) -> Response | None:
    """Validate Url / Method / Twiml the way the REST API does before a call ever sees them."""
    if form.get("Url") and not _absolute_http(form["Url"]):
        return twilio_error(400, 21205, f"Url is not a valid URL: {form['Url']}")
    if (form.get("Method") or "POST").upper() not in ("GET", "POST"):
        return twilio_error(400, 21403, "Invalid Method; must be GET or POST")
    if len(form.get("Twiml") or "") > TWIML_MAX_CHARS:
        return twilio_error(400, 32018, f"Twiml size exceeded maximum allowed value of {TWIML_MAX_CHARS} characters")
    return None
