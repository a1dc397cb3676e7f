//! JavaScript bots: one event in a fresh QuickJS runtime. Set the caps, remove the ambient clock
//! and randomness, load the bot's source (compiled once per process, see [`compiled`]), construct its `Bot` class, call the handler, run the
//! promise jobs it left, and turn whatever went wrong into a [`BotError`].
//!
//! Nothing survives an event but its [`Reaction`]: the runtime, the bot object and every value in
//! it are dropped, so one event cannot leak into the next except through `ctx.set_state`.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use rquickjs::context::intrinsic;
use rquickjs::function::This;
use rquickjs::{Constructor, Context, Ctx, Function, Object, Persistent, Promise, Runtime, Value};

use crate::compiled;
use crate::error::{BotError, BotErrorKind};
use crate::event::{Call, EventContext, Reaction, handler_name};
use crate::host::{Host, HostState, make_ctx_object};
use crate::limits::{CpuDeadline, Limits};
use crate::source::BotSource;

/// The engine features bots get. Left out on purpose: `Performance` (an ambient clock) and
/// `WeakRef`/`FinalizationRegistry` (they let code observe the garbage collector, which would
/// make runs differ). No module loader is installed, so `import` has nothing to load, and
/// QuickJS's `std`/`os` modules are not part of the engine at all.
type Intrinsics = (
    intrinsic::Date,
    intrinsic::Eval,
    intrinsic::RegExpCompiler,
    intrinsic::RegExp,
    intrinsic::Json,
    intrinsic::Proxy,
    intrinsic::MapSet,
    intrinsic::TypedArrays,
    intrinsic::Promise,
);

/// Script run before the bot's source; see the file for what it does.
const PRELUDE: &str = include_str!("prelude.js");

/// Where in the event a JavaScript failure happened, to word its error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Setup,
    Load,
    Construct,
    Handler(&'static str),
}

impl Phase {
    fn describe(self) -> &'static str {
        match self {
            Phase::Setup => "the sandbox setup",
            Phase::Load => "the top-level code",
            Phase::Construct => "the Bot constructor",
            Phase::Handler(name) => name,
        }
    }
}

/// Why `start` stopped early.
enum Failure {
    /// A JavaScript call failed; the thrown value, if any, is pending in the context.
    Js(rquickjs::Error, Phase),
    /// The host decided (no `Bot` class, for instance).
    Bot(BotError),
}

impl Failure {
    fn into_error(self, ctx: &Ctx<'_>, file_name: &str) -> BotError {
        match self {
            Failure::Bot(error) => error,
            Failure::Js(error, phase) => classify(ctx, error, phase, file_name),
        }
    }
}

fn at(phase: Phase) -> impl Fn(rquickjs::Error) -> Failure {
    move |error| Failure::Js(error, phase)
}

/// Runs `call` (or, without one, only loads the bot) in a fresh runtime. Blocking and CPU-bound
/// (up to `limits.cpu`); the calling thread needs more free stack than `limits.stack_bytes`.
pub(crate) fn run(
    bot: &BotSource,
    context: &EventContext,
    call: Option<&Call>,
    limits: &Limits,
) -> Result<Reaction, BotError> {
    let deadline = CpuDeadline::after(limits.cpu);
    let budget_spent = Rc::new(Cell::new(false));
    let over_budget = || BotError::over_budget(limits.cpu);

    let runtime = Runtime::new().map_err(|error| {
        BotError::new(
            BotErrorKind::Internal,
            format!("the engine did not start: {error}"),
        )
    })?;
    runtime.set_memory_limit(limits.memory_bytes);
    runtime.set_max_stack_size(limits.stack_bytes);
    // A callback that runs out of memory in one go rejects its promise with the engine's
    // out-of-memory error, which the tracker sees when nothing handles it.
    let job_ran_out_of_memory = Rc::new(Cell::new(false));
    {
        let flag = Rc::clone(&job_ran_out_of_memory);
        runtime.set_host_promise_rejection_tracker(Some(Box::new(
            move |_ctx, _promise, reason, handled| {
                if !handled && is_out_of_memory(&reason) {
                    flag.set(true);
                }
            },
        )));
    }
    {
        let budget_spent = Rc::clone(&budget_spent);
        // Once the deadline passes this keeps answering "interrupt", so no bot code runs again
        // in this runtime, not even a `finally` block or a getter the host happens to touch.
        runtime.set_interrupt_handler(Some(Box::new(move || {
            if budget_spent.get() || deadline.passed() {
                budget_spent.set(true);
            }
            budget_spent.get()
        })));
    }
    let js = Context::custom::<Intrinsics>(&runtime).map_err(|_| {
        BotError::new(
            BotErrorKind::Memory,
            "the memory cap is too small for the engine itself",
        )
    })?;
    let host: Host = Rc::new(RefCell::new(HostState::new(
        context,
        limits,
        Rc::clone(&budget_spent),
    )));

    // Classifying reads the thrown value, which may run bot code (a `message` getter), so the
    // refusal and budget checks come after it. A refused `ctx` call fails the event even if the
    // bot caught its exception.
    let host_verdict = || -> Result<(), BotError> {
        if let Some(refusal) = host.borrow_mut().refusal.take() {
            return Err(refusal);
        }
        if budget_spent.get() {
            return Err(over_budget());
        }
        Ok(())
    };
    let handled = js.with(|ctx| {
        let outcome = start(&ctx, bot, context, call, &host)
            .map(|returned| returned.map(|(value, phase)| (Persistent::save(&ctx, value), phase)))
            .map_err(|failure| failure.into_error(&ctx, bot.name()));
        host_verdict()?;
        outcome
    })?;
    // Jobs run outside the context's lock, where the runtime can report a failed job and the
    // heap's size between jobs.
    let jobs = run_jobs(&runtime, &host, deadline);
    js.with(|ctx| {
        let outcome = match jobs {
            _ if job_ran_out_of_memory.get() => Err(BotError::new(
                BotErrorKind::Memory,
                "a promise job ran out of memory",
            )),
            Err(JobsStopped::Failed | JobsStopped::HeapFull) => Err(BotError::new(
                BotErrorKind::Memory,
                "the promise jobs ran out of memory",
            )),
            Ok(()) => {
                settled(&ctx, handled).map_err(|failure| failure.into_error(&ctx, bot.name()))
            }
        };
        host_verdict()?;
        outcome
    })?;
    // Native work the engine does without polling the interrupt (a long sort, say) is caught
    // here: an event that took longer than its budget fails even if no interrupt fired.
    if budget_spent.get() || deadline.passed() {
        return Err(over_budget());
    }
    let mut state = host.borrow_mut();
    Ok(Reaction {
        posts: std::mem::take(&mut state.posts),
        state: state.new_state.take(),
        end: state.end.take(),
        timers: std::mem::take(&mut state.timers),
        fetches: std::mem::take(&mut state.fetches),
    })
}

/// Loads the bot, builds it and calls the event's handler; returns what the handler returned,
/// to look at once the promise jobs have run.
fn start<'js>(
    ctx: &Ctx<'js>,
    bot: &BotSource,
    context: &EventContext,
    call: Option<&Call>,
    host: &Host,
) -> Result<Option<(Value<'js>, Phase)>, Failure> {
    install_globals(ctx, host, context.now.0).map_err(at(Phase::Setup))?;
    let ctx_object = make_ctx_object(ctx, host).map_err(at(Phase::Setup))?;

    compiled::run_source(ctx, bot).map_err(at(Phase::Load))?;
    // A top-level `class Bot` is a lexical binding, not a property of `globalThis`, but a later
    // script in the same context sees it; `globalThis.Bot = …` works as well.
    let class: Value = ctx
        .eval("typeof Bot === 'function' ? Bot : undefined")
        .map_err(at(Phase::Load))?;
    if !class.is_constructor() {
        return Err(Failure::Bot(BotError::new(
            BotErrorKind::BadSource,
            "the source must define `class Bot { constructor(ctx, params) {…} … }` at top level",
        )));
    }
    let Some(call) = call else {
        return Ok(None);
    };
    let Some(handler_name) = handler_name(&call.handler) else {
        return Err(Failure::Bot(BotError::new(
            BotErrorKind::Internal,
            format!("the host asked for an unknown handler {:?}", call.handler),
        )));
    };
    let class = Constructor::from_value(class).map_err(at(Phase::Load))?;

    let params = ctx
        .json_parse(context.params.to_string())
        .map_err(at(Phase::Setup))?;
    let instance: Value = class
        .construct((ctx_object, params))
        .map_err(at(Phase::Construct))?;

    let phase = Phase::Handler(handler_name);
    let handler: Value = match instance.as_object() {
        Some(object) => object.get(handler_name).map_err(at(phase))?,
        None => Value::new_undefined(ctx.clone()),
    };
    if handler.is_undefined() || handler.is_null() {
        Ok(None)
    } else if let Some(handler) = handler.as_function() {
        let argument = match &call.argument {
            Some(json) => Some(ctx.json_parse(json.to_string()).map_err(at(Phase::Setup))?),
            None => None,
        };
        let returned: Value = match argument {
            Some(argument) => handler.call((This(instance.clone()), argument)),
            None => handler.call((This(instance.clone()),)),
        }
        .map_err(at(phase))?;
        Ok(Some((returned, phase)))
    } else {
        Err(Failure::Bot(BotError::new(
            BotErrorKind::BadSource,
            format!(
                "Bot.{handler_name} must be a method, not a {}",
                handler.type_name()
            ),
        )))
    }
}

/// An async handler's rejection is its uncaught exception. A promise still pending once no job
/// is left can never settle (there is no `setTimeout` and no I/O; `ctx.set_timer` asks for a
/// later event, it settles nothing in this one), so it is treated as done.
fn settled(
    ctx: &Ctx<'_>,
    handled: Option<(Persistent<Value<'static>>, Phase)>,
) -> Result<(), Failure> {
    let Some((returned, phase)) = handled else {
        return Ok(());
    };
    let returned = returned.restore(ctx).map_err(at(phase))?;
    if let Some(promise) = returned.into_promise()
        && let Some(Err(error)) = Promise::result::<Value>(&promise)
    {
        return Err(Failure::Js(error, phase));
    }
    Ok(())
}

/// How the promise jobs ended early.
enum JobsStopped {
    /// A job failed in the engine itself (bot code cannot make a job fail: a callback that
    /// throws rejects its promise instead).
    Failed,
    /// The heap came within [`HEAP_HEADROOM`] of its cap.
    HeapFull,
}

/// How close to its cap the heap may come while promise jobs run. A callback that runs out of
/// memory only rejects its promise, and the engine frees the rest as the chain unwinds, so the
/// host watches the heap between jobs instead of waiting for an error it may never see.
const HEAP_HEADROOM: i64 = 1 << 20;

/// Jobs between two looks at the heap: a look walks the whole heap, and a job allocates a few
/// hundred bytes, far below the headroom.
const JOBS_PER_HEAP_CHECK: u32 = 128;

/// Runs queued promise jobs until none is left, within the event's budget and heap. A callback
/// that throws rejects its promise, which bot code may or may not handle, as in a browser.
fn run_jobs(runtime: &Runtime, host: &Host, deadline: CpuDeadline) -> Result<(), JobsStopped> {
    let mut since_heap_check = 0;
    loop {
        match runtime.execute_pending_job() {
            Ok(false) => return Ok(()),
            Ok(true) => {}
            Err(failed) => {
                // Clear the exception the job left pending on its context.
                failed.0.with(|ctx| drop(ctx.catch()));
                return Err(JobsStopped::Failed);
            }
        }
        if deadline.passed() {
            host.borrow().mark_budget_spent();
        }
        if host.borrow().budget_is_spent() {
            return Ok(());
        }
        since_heap_check += 1;
        if since_heap_check == JOBS_PER_HEAP_CHECK {
            since_heap_check = 0;
            let heap = runtime.memory_usage();
            if heap.malloc_limit > 0 && heap.malloc_size + HEAP_HEADROOM >= heap.malloc_limit {
                return Err(JobsStopped::HeapFull);
            }
        }
    }
}

/// Replaces `Math.random` with the seeded stream, and runs the prelude (fixed clock, console).
fn install_globals(ctx: &Ctx<'_>, host: &Host, now_ms: i64) -> rquickjs::Result<()> {
    let math: Object = ctx.globals().get("Math")?;
    let random_host = Rc::clone(host);
    let random = Function::new(ctx.clone(), move || random_host.borrow_mut().random_unit())?
        .with_name("random")?;
    math.set("random", random)?;
    let fix_clock: Function = ctx.eval(PRELUDE)?;
    fix_clock.call::<_, ()>((now_ms as f64,))
}

/// Whether a thrown value is the engine's own out-of-memory error.
fn is_out_of_memory(thrown: &Value<'_>) -> bool {
    thrown.is_error()
        && thrown.as_object().is_some_and(|error| {
            error
                .get::<_, String>("message")
                .is_ok_and(|message| message == "out of memory")
        })
}

/// Turns a failed JavaScript call into a [`BotError`], reading the thrown value.
fn classify(ctx: &Ctx<'_>, error: rquickjs::Error, phase: Phase, file_name: &str) -> BotError {
    let location = phase.describe();
    match error {
        rquickjs::Error::Exception => {
            let thrown = ctx.catch();
            describe_thrown(ctx, &thrown, phase, file_name)
        }
        rquickjs::Error::Allocation => BotError::new(
            BotErrorKind::Memory,
            format!("{location} ran out of memory"),
        ),
        rquickjs::Error::InvalidString(_) if phase == Phase::Load => BotError::new(
            BotErrorKind::BadSource,
            "the source must not contain NUL characters",
        ),
        other => BotError::new(
            BotErrorKind::Internal,
            format!("{location} failed in the host: {other}"),
        ),
    }
}

fn describe_thrown<'js>(
    ctx: &Ctx<'js>,
    thrown: &Value<'js>,
    phase: Phase,
    file_name: &str,
) -> BotError {
    let location = phase.describe();
    let Some(object) = thrown.as_object().filter(|_| thrown.is_error()) else {
        if phase == Phase::Setup {
            // Host code throws only errors; a bare value here means the engine could not even
            // allocate the "out of memory" error.
            return BotError::new(
                BotErrorKind::Memory,
                "the memory cap is too small for the sandbox setup",
            );
        }
        return BotError::new(
            BotErrorKind::Threw,
            format!("{location} threw {}", describe_value(ctx, thrown)),
        );
    };
    let read = |key: &str| {
        object
            .get::<_, Option<rquickjs::Coerced<String>>>(key)
            .ok()
            .flatten()
            .map(|coerced| coerced.0)
    };
    let name = read("name").unwrap_or_else(|| "Error".to_owned());
    let message = read("message").unwrap_or_default();
    let line = read("stack").and_then(|stack| line_in_stack(&stack, file_name));
    let kind = match (name.as_str(), message.as_str()) {
        ("InternalError", "out of memory") => BotErrorKind::Memory,
        ("RangeError", "Maximum call stack size exceeded") => BotErrorKind::StackOverflow,
        ("InternalError", stack) if stack.starts_with("stack overflow") => {
            BotErrorKind::StackOverflow
        }
        ("SyntaxError", _) if phase == Phase::Load => BotErrorKind::BadSource,
        _ if phase == Phase::Setup => BotErrorKind::Internal,
        _ => BotErrorKind::Threw,
    };
    let message = match kind {
        BotErrorKind::Memory => format!(
            "{location} ran out of memory (the cap is per event; keep state and data small)"
        ),
        BotErrorKind::StackOverflow => {
            format!("{location} overflowed the stack (recursion too deep)")
        }
        _ => format!("{location} threw {name}: {message}"),
    };
    BotError::new(kind, message).at_line(line)
}

/// A short rendering of a thrown value that is not an `Error`.
fn describe_value<'js>(ctx: &Ctx<'js>, value: &Value<'js>) -> String {
    if let Some(text) = value.as_string() {
        return format!(
            "the string {:?}",
            text.to_string().unwrap_or_else(|_| "?".to_owned())
        );
    }
    if let Some(number) = value.as_number() {
        return format!("the number {number}");
    }
    if let Some(flag) = value.as_bool() {
        return flag.to_string();
    }
    if value.is_null() || value.is_undefined() {
        return value.type_name().to_owned();
    }
    if value.is_object() {
        if let Ok(Some(json)) = ctx.json_stringify(value.clone())
            && let Ok(json) = json.to_string()
        {
            return format!("the value {json}");
        }
        // The rendering failed; its exception must not linger in the context.
        let _ = ctx.catch();
    }
    format!("a {}", value.type_name())
}

/// The first line number in a QuickJS stack trace that points into `file_name`
/// (frames look like `at on_message (guess.js:42:17)`).
fn line_in_stack(stack: &str, file_name: &str) -> Option<u32> {
    let needle = format!("{file_name}:");
    stack.match_indices(&needle).find_map(|(start, _)| {
        let digits: String = stack[start + needle.len()..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    })
}
