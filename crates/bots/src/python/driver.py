
# ---- host driver, appended after the bot's source so the bot's line numbers stay as written ----
# `_mm_*` names that are not defined here are the host's: external functions (each call pauses
# Monty and the host answers it in Rust, which checks every argument) and the inputs of the
# event. The host replaces BOT_CLASS with the name of the bot's class.


class _mm_Ctx:
    def __init__(self):
        self.channel_id = _mm_channel_id
        self.bot_slot = _mm_bot_slot
        self.reveal_private = _mm_reveal_private

    def post(self, *args):
        return _mm_post(*args)

    def post_to(self, *args):
        return _mm_post_to(*args)

    def get_state(self, *args):
        return _mm_get_state(*args)

    def set_state(self, *args):
        return _mm_set_state(*args)

    def players(self, *args):
        return _mm_players(*args)

    def slots(self, *args):
        return _mm_slots(*args)

    def now(self, *args):
        return _mm_now(*args)

    def random_int(self, *args):
        return _mm_random_int(*args)

    def random_bytes(self, *args):
        return _mm_random_bytes(*args)

    def sha256(self, *args):
        return _mm_sha256(*args)

    def commit(self, *args):
        return _mm_commit(*args)

    def end(self, *args):
        return _mm_end(*args)

    def set_timer(self, *args):
        return _mm_set_timer(*args)

    def cancel_timer(self, *args):
        return _mm_cancel_timer(*args)

    def request_fetch(self, *args):
        return _mm_request_fetch(*args)


_mm_class = BOT_CLASS
if _mm_handler is not None:
    _mm_phase('constructor')
    _mm_bot = _mm_class(_mm_Ctx(), _mm_params)
    _mm_method = getattr(_mm_bot, _mm_handler, None)
    if _mm_method is not None:
        _mm_phase('handler')
        if _mm_argument is None:
            _mm_method()
        else:
            _mm_method(_mm_argument)
