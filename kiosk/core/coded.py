"""Errors that name what happened by a code and its params; the web layer words them (kiosk/web/words.py).

Product code never words a refusal for a page: it raises one of these, whose `code` says what happened and whose
`params` hold the values the sentence needs. Its English text, formatted, is what str() gives, for the log.
"""


class Coded(Exception):
    """An error with a `code` (what happened) and named `params`; str() is its English sentence, for the log."""

    def __init__(self, code, english, **params):
        super().__init__(english % params if params else english)
        self.code, self.params, self.english = code, params, english
