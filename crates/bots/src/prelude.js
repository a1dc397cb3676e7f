// Runs in every fresh context before the bot's source, with the event's timestamp.
// It removes the ambient clock: `Date.now()` and `new Date()` give the event time, while
// `new Date(value)` and the static helpers work as usual. It also gives `console` no-op methods,
// since bot code written for other hosts often logs and nothing here would read it.
(function (now) {
  "use strict";
  const RealDate = Date;
  const construct = Reflect.construct;
  const defineProperty = Object.defineProperty;
  const FixedDate = function Date(...args) {
    if (new.target === undefined) {
      return construct(RealDate, [now], RealDate).toString();
    }
    return construct(RealDate, args.length === 0 ? [now] : args, new.target);
  };
  defineProperty(FixedDate, "prototype", { value: RealDate.prototype });
  defineProperty(FixedDate, "length", { value: 7 });
  FixedDate.now = {
    now() {
      return now;
    },
  }.now;
  FixedDate.parse = RealDate.parse;
  FixedDate.UTC = RealDate.UTC;
  defineProperty(RealDate.prototype, "constructor", {
    value: FixedDate,
    writable: true,
    configurable: true,
    enumerable: false,
  });
  defineProperty(globalThis, "Date", {
    value: FixedDate,
    writable: true,
    configurable: true,
    enumerable: false,
  });
  const quiet = function () {};
  defineProperty(globalThis, "console", {
    value: { log: quiet, info: quiet, warn: quiet, error: quiet, debug: quiet },
    writable: true,
    configurable: true,
    enumerable: false,
  });
})
