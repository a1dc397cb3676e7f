// EchoBot: repeats every user message back, unchanged, to the channel, or privately to the
// sender when the message was private. It counts what it echoed in its state.
// Useful to try bots out and to test the host.

class Bot {
  constructor(ctx, params) {
    this.ctx = ctx;
    this.params = params;
  }

  on_init() {
    this.ctx.set_state({ echoed: 0 });
    this.ctx.post("EchoBot is here: I repeat every message.");
  }

  on_message(msg) {
    if (msg.kind !== "user") {
      return;
    }
    const body = {};
    if (msg.body.text !== null) {
      body.text = msg.body.text;
    }
    if (msg.body.data !== null) {
      body.data = msg.body.data;
    }
    if (msg.private) {
      this.ctx.post_to(msg.sender, body);
    } else {
      this.ctx.post(body);
    }
    const state = this.ctx.get_state() || { echoed: 0 };
    state.echoed += 1;
    this.ctx.set_state(state);
  }
}
