"""The phone-text layer between the chatbot seam and the TwiML: what a caller hears of a chat answer (render), the
spoken menu of its options and the caller's choice (menu, choose), and the sentence about links sent by SMS."""
from .options import choose, menu, option_hints
from .phrases import link_note
from .render import digits_interpretation, render, speaks_ssml
from .speech import Part, Pause, SayAs, Spoken

__all__ = ["Part", "Pause", "SayAs", "Spoken", "choose", "digits_interpretation", "link_note", "menu",
           "option_hints", "render", "speaks_ssml"]
