"""Chat markdown read as speech: blocks become sentences, list items and table rows pauses, and links, email
addresses and images are taken out of the words and kept aside (markdown-it-py with linkify-it-py finds them)."""
from __future__ import annotations

from functools import lru_cache

from markdown_it import MarkdownIt
from markdown_it.token import Token

from . import phrases
from .speech import Pause

SENTENCE_MARKS = ".!?:;…"


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    """CommonMark with GitHub's tables and strikethrough, and bare URLs / www. / emails found as links; no HTML, so a
    "<" is said as written (contract section 1)."""
    return MarkdownIt("commonmark", {"linkify": True, "html": False}).enable(["linkify", "table", "strikethrough"])


class _Reader:
    """Walks markdown-it's tokens once, gathering the words (with pauses) and the links."""

    def __init__(self, language: str) -> None:
        self.language = language
        self.pieces: list[str | Pause] = []
        self.links: list[str] = []
        self.lists = 0
        self.row: list[str] = []
        self.header: list[str] = []
        self.in_head = False
        self.cells = 0  # > 0 inside a table cell, whose words go to the row

    def link(self, target: str) -> None:
        """Keep a link for the text message (an email address without its mailto:), once."""
        target = target[len("mailto:"):] if target.startswith("mailto:") else target
        if target and target not in self.links:
            self.links.append(target)

    def code(self, text: str) -> str:
        """Code's words, with any link in it taken out as bare links are (markdown leaves code unlinked)."""
        found = _parser().linkify.match(text) or []
        for match in found:
            self.link(match.url)
        for match in reversed(found):
            words = phrases.pick(phrases.EMAIL_WORDS if match.url.startswith("mailto:") else phrases.LINK_WORDS,
                                 self.language)
            text = text[:match.index] + words + text[match.last_index:]
        return text

    def end_sentence(self) -> None:
        """Close what was said so far with a full stop, unless it already ends with a mark."""
        for n in range(len(self.pieces) - 1, -1, -1):
            piece = self.pieces[n]
            if isinstance(piece, Pause):
                continue
            if piece.strip():
                stripped = piece.rstrip()
                self.pieces[n] = stripped + ("" if stripped[-1] in SENTENCE_MARKS else ".") + " "
                return

    def inline(self, token: Token) -> str:
        """An inline run's words: emphasis and code markers dropped, links' own words kept, bare links taken out."""
        words: list[str] = []
        skipping = False  # inside a bare link, whose words are the URL itself
        stand_ins: set[int] = set()  # where in `words` a bare link's stand-in words are
        for child in token.children or ():
            if child.type == "link_open":
                href = str(child.attrs.get("href") or "")
                self.link(href)
                skipping = child.markup in ("linkify", "autolink")
                if skipping:  # a bare link or address: a few words stand where it was
                    stand_ins.add(len(words))
                    words.append(phrases.pick(phrases.EMAIL_WORDS if href.startswith("mailto:")
                                              else phrases.LINK_WORDS, self.language))
            elif child.type == "link_close":
                skipping = False
            elif child.type == "image":
                self.link(str(child.attrs.get("src") or ""))
            elif skipping or child.type == "html_inline":
                continue
            elif child.type == "text":
                words.append(child.content)
            elif child.type == "code_inline":
                words.append(self.code(child.content))
            elif child.type == "softbreak":
                words.append(" ")
            elif child.type == "hardbreak":
                words.append(", ")
        # No stand-in words for links that are all there is, or that end the run after a colon ("Details: <url>"):
        # "Details." then the sentence about the text message reads better than "Details: the link."
        tail = len(words)
        while tail and (tail - 1 in stand_ins or not any(c.isalnum() for c in words[tail - 1])):
            tail -= 1
        before = "".join(words[:tail]).rstrip()
        if any(i >= tail for i in stand_ins) and (not before or before.endswith(":")):
            words = [word for i, word in enumerate(words) if i < tail or i not in stand_ins]
        return "".join(words)

    def feed(self, token: Token) -> None:
        """One block-level token."""
        kind = token.type
        if kind == "inline":
            text = self.inline(token)
            if self.cells:
                self.row.append(text.strip())
            else:
                self.pieces.append(text)
        elif kind in ("heading_close", "paragraph_close") and not self.lists:
            self.end_sentence()
        elif kind == "list_item_close":
            self.pieces.append(Pause())
        elif kind in ("bullet_list_open", "ordered_list_open"):
            self.lists += 1
        elif kind in ("bullet_list_close", "ordered_list_close"):
            self.lists -= 1
            if not self.lists:
                self.end_sentence()
        elif kind in ("fence", "code_block"):
            for line in token.content.splitlines():
                if line.strip():
                    self.pieces += [self.code(line.strip()), Pause()]
            self.end_sentence()
        elif kind in ("th_open", "td_open"):
            self.cells += 1
        elif kind in ("th_close", "td_close"):
            self.cells -= 1
        elif kind == "thead_open":
            self.in_head = True
        elif kind == "thead_close":
            self.in_head = False
        elif kind == "tr_open":
            self.row = []
        elif kind == "tr_close":
            self.table_row()
        elif kind == "table_close":
            self.end_sentence()
        elif kind == "hr":
            self.pieces.append(Pause())

    def table_row(self) -> None:
        """A header row is remembered; a body row is said as "header: cell, header: cell", then a pause."""
        if self.in_head:
            self.header = self.row
            return
        cells = [f"{name}: {cell}" if name else cell
                 for name, cell in zip(self.header + [""] * len(self.row), self.row) if cell]
        if cells:
            self.pieces += [", ".join(cells), Pause()]


def read_markdown(text: str, language: str = "en-US") -> tuple[list[str | Pause], list[str]]:
    """The words of a chat text with pauses where lists and tables break, and the links found in it, in order."""
    reader = _Reader(language)
    for token in _parser().parse(text):
        reader.feed(token)
    return reader.pieces, reader.links
