//! Python bots: one event in a fresh Monty interpreter. Find the bot's class, append the host
//! driver (`driver.py`) to the source, compile, then run it while answering the calls it makes
//! to the host (`ctx`, in [`host`]), and turn whatever went wrong into a [`BotError`].
//!
//! Monty runs its own bytecode, with no access to the host: `open`, `os.getenv` and friends
//! pause the run with an OS call, which the host refuses; names Monty does not know (`eval`,
//! `exec`, `__import__`) pause it with a function call, which the host answers with `NameError`;
//! `datetime.now()` asks the host too and gets the event's time. So, as in JavaScript, a run
//! depends only on the source, the [`EventContext`] and the call.
//!
//! Monty is run on a thread of its own with a stack sized for the recursion cap, so how deep a
//! bot may recurse does not depend on the caller's thread. Like the JavaScript runtime, a few
//! native operations (a huge integer power) are not interrupted by the time limit: the caller
//! runs this in a process it can kill.

mod host;

use std::time::Instant;

use monty::{MontyRun, RunProgress};
use monty_types::{
    CompileOptions, ExcType, MontyException, MontyObject, NameLookupResult, PrintWriter,
    ResourceLimits, ResourceTracker,
};

use crate::error::{BotError, BotErrorKind};
use crate::event::{Call, EventContext, Reaction, handler_name};
use crate::limits::{CpuDeadline, Limits};
use crate::source::BotSource;

use host::{HOST_FUNCTIONS, PyHost};

/// The host's half of every Python bot: the `ctx` class and the code that builds the bot and
/// calls its handler. `BOT_CLASS` is replaced by the name of the bot's class.
const DRIVER: &str = include_str!("driver.py");

/// The event's inputs, in the order [`run_here`] passes them after [`HOST_FUNCTIONS`].
const INPUTS: [&str; 6] = [
    "_mm_channel_id",
    "_mm_bot_slot",
    "_mm_reveal_private",
    "_mm_handler",
    "_mm_params",
    "_mm_argument",
];

/// Python frames per byte of [`Limits::stack_bytes`]: 2 KiB each, so the default 512 KiB allows
/// 256 nested calls (CPython allows 1000; bots rarely need a tenth).
const STACK_BYTES_PER_FRAME: usize = 2048;

/// Bounds of the recursion cap, whatever `stack_bytes` says.
const RECURSION_DEPTH_RANGE: (usize, usize) = (64, 1000);

/// Monty's own limit, in wall time, as a multiple of the CPU budget.
const WALL_FACTOR: u32 = 4;

/// Native stack of the interpreter's thread per allowed Python frame. Monty charges one level
/// per Python call and per level of nested data it walks (`repr`, `==`, `json.dumps`, values
/// crossing to the host); a debug build uses up to ~16 KiB of native stack per level, a release
/// build far less, so this leaves room in both.
const THREAD_STACK_PER_FRAME: usize = 32 * 1024;

/// Host calls one event may make beyond its posts: the driver makes two, a game bot a dozen.
/// The cap stops a loop around `ctx` (time spent in the host is not on Monty's clock).
const EXTRA_HOST_CALLS: usize = 1000;

/// Where in the event a Python failure happened, to word its error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Load,
    Construct,
    Handler(&'static str),
}

/// Runs `call` (or, without one, only loads the bot) in a fresh interpreter, on a thread of its
/// own. Blocking and CPU-bound (up to `limits.cpu`).
pub(crate) fn run(
    bot: &BotSource,
    context: &EventContext,
    call: Option<&Call>,
    limits: &Limits,
) -> Result<Reaction, BotError> {
    let depth = recursion_depth(limits);
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name("python-bot".to_owned())
            .stack_size(depth * THREAD_STACK_PER_FRAME)
            .spawn_scoped(scope, || run_here(bot, context, call, limits, depth))
            .map_err(|error| {
                BotError::new(
                    BotErrorKind::Internal,
                    format!("the Python runtime did not start: {error}"),
                )
            })?;
        thread.join().unwrap_or_else(|_| {
            Err(BotError::new(
                BotErrorKind::Internal,
                "the Python runtime failed (a panic in the interpreter)",
            ))
        })
    })
}

/// The recursion cap for `limits`: see [`STACK_BYTES_PER_FRAME`].
fn recursion_depth(limits: &Limits) -> usize {
    (limits.stack_bytes / STACK_BYTES_PER_FRAME)
        .clamp(RECURSION_DEPTH_RANGE.0, RECURSION_DEPTH_RANGE.1)
}

fn run_here(
    bot: &BotSource,
    context: &EventContext,
    call: Option<&Call>,
    limits: &Limits,
    depth: usize,
) -> Result<Reaction, BotError> {
    let started = Instant::now();
    let deadline = CpuDeadline::after(limits.cpu);
    let over_budget = || BotError::over_budget(limits.cpu);

    let source = bot.source();
    let class = bot_class(source)?;
    let bot_lines = u32::try_from(source.lines().count()).unwrap_or(u32::MAX);
    let mut code = String::with_capacity(source.len() + DRIVER.len() + class.len() + 1);
    code.push_str(source);
    if !source.is_empty() && !source.ends_with('\n') {
        code.push('\n');
    }
    code.push_str(&DRIVER.replace("BOT_CLASS", &class));

    let handler = match call {
        Some(call) => Some(handler_name(&call.handler).ok_or_else(|| {
            BotError::new(
                BotErrorKind::Internal,
                format!("the host asked for an unknown handler {:?}", call.handler),
            )
        })?),
        None => None,
    };

    let input_names = HOST_FUNCTIONS
        .iter()
        .chain(INPUTS.iter())
        .map(|name| (*name).to_owned())
        .collect();
    let runner = MontyRun::new(code, bot.name(), input_names, CompileOptions::default())
        .map_err(|error| compile_error(&error, bot_lines))?;

    let mut inputs: Vec<MontyObject> = HOST_FUNCTIONS
        .iter()
        .map(|name| MontyObject::Function {
            name: (*name).to_owned(),
            docstring: None,
        })
        .collect();
    inputs.extend([
        MontyObject::String(context.channel_id.as_str().to_owned()),
        MontyObject::String(context.bot_slot.as_str().to_owned()),
        MontyObject::Bool(context.reveal_private),
        handler.map_or(MontyObject::None, |name| {
            MontyObject::String(name.to_owned())
        }),
        host::to_python(&context.params),
        call.and_then(|call| call.argument.as_ref())
            .map_or(MontyObject::None, host::to_python),
    ]);

    let max_calls = limits.max_posts.saturating_add(EXTRA_HOST_CALLS);
    let resource_limits = ResourceLimits {
        // Monty's clock is wall time; the budget is CPU time, checked at every host call and
        // at the end, and enforced by the worker's watchdog. A wall limit of a few budgets stops
        // a loop gracefully without failing a bot that a busy machine merely slowed.
        max_duration: Some((limits.cpu * WALL_FACTOR).saturating_sub(started.elapsed())),
        // Without Monty's allocator nothing measures the heap, but with a cap set Monty refuses
        // single results estimated above it ('a' * 10**10, 2 ** 10**9) before allocating them.
        max_memory: Some(limits.memory_bytes),
        gc_interval: None,
        max_recursion_depth: depth,
        max_suspensions: max_calls,
    };
    let mut host = PyHost::new(context, limits, handler);
    let print = || PrintWriter::Disabled;

    let mut progress = runner.start(inputs, ResourceTracker::new(resource_limits), print());
    let mut calls = 0usize;
    let outcome = loop {
        let paused = match progress {
            Ok(RunProgress::Complete(_)) => break Ok(()),
            Err(error) => break Err(error),
            Ok(paused) => paused,
        };
        calls += 1;
        let stop = if deadline.passed() {
            Some(over_budget())
        } else if calls > max_calls {
            Some(BotError::new(
                BotErrorKind::CpuBudget,
                format!(
                    "the event made more than {max_calls} calls to ctx; is ctx called in a loop?"
                ),
            ))
        } else {
            None
        };
        progress = match paused {
            RunProgress::FunctionCall(function) => {
                if let Some(stop) = stop {
                    host.refuse(stop);
                }
                let answer = match host.refusal() {
                    Some(_) => None,
                    None => {
                        Some(host.call(&function.function_name, &function.args, &function.kwargs))
                    }
                };
                match answer {
                    Some(Ok(result)) => function.resume(result, print()),
                    Some(Err(())) | None => function.abort(abort_exception(&host), print()),
                }
            }
            RunProgress::OsCall(os_call) => match stop {
                Some(stop) => {
                    host.refuse(stop);
                    os_call.abort(abort_exception(&host), print())
                }
                None => {
                    let answer = host.os_call(&os_call.function_call);
                    os_call.resume(answer, print())
                }
            },
            RunProgress::NameLookup(lookup) => match stop {
                Some(stop) => {
                    host.refuse(stop);
                    lookup.abort(abort_exception(&host), print())
                }
                None => lookup.resume(NameLookupResult::Undefined, print()),
            },
            RunProgress::ResolveFutures(_) => {
                // The host never hands out futures, so nothing can wait on one.
                break Err(MontyException::new(
                    ExcType::RuntimeError,
                    Some("the bot awaited something the host never provides".to_owned()),
                ));
            }
            RunProgress::Complete(_) => unreachable!("handled above"),
        };
    };

    if let Some(refusal) = host.take_refusal() {
        return Err(refusal);
    }
    if let Err(error) = outcome {
        let classified = classify(&error, host.phase(), bot_lines, &class);
        if classified.kind == BotErrorKind::CpuBudget {
            return Err(over_budget());
        }
        return Err(classified);
    }
    // Time spent outside Monty's clock (compiling, the host's answers) counts too.
    if deadline.passed() {
        return Err(over_budget());
    }
    Ok(host.into_reaction())
}

/// The exception that ends a run the host stopped; bot code cannot catch it, and the event's
/// error is the recorded refusal, not this.
fn abort_exception(host: &PyHost<'_>) -> MontyException {
    let message = host
        .refusal()
        .map_or_else(|| "refused".to_owned(), |refusal| refusal.message.clone());
    MontyException::new(ExcType::RuntimeError, Some(message))
}

/// The bot's class: the top-level class named `Bot` if there is one, otherwise the only
/// top-level class. A source that does not parse fails here, with the line.
fn bot_class(source: &str) -> Result<String, BotError> {
    let parsed = ruff_python_parser::parse_module(source).map_err(|error| {
        let offset = usize::try_from(u32::from(error.location.start())).unwrap_or(usize::MAX);
        let line = source
            .get(..offset)
            .map(|before| before.matches('\n').count() + 1);
        BotError::new(
            BotErrorKind::BadSource,
            format!("the source does not parse: SyntaxError: {}", error.error),
        )
        .at_line(line.and_then(|line| u32::try_from(line).ok()))
    })?;
    let classes: Vec<&str> = parsed
        .syntax()
        .body
        .iter()
        .filter_map(|statement| match statement {
            ruff_python_ast::Stmt::ClassDef(class) => Some(class.name.as_str()),
            _ => None,
        })
        .collect();
    if classes.contains(&"Bot") {
        return Ok("Bot".to_owned());
    }
    match classes.as_slice() {
        [only] => Ok((*only).to_owned()),
        [] => Err(BotError::new(
            BotErrorKind::BadSource,
            "the source must define the bot's class at top level: `class Bot:` with \
             `def __init__(self, ctx, params):` and the handlers",
        )),
        several => Err(BotError::new(
            BotErrorKind::BadSource,
            format!(
                "the source defines {} top-level classes ({}); name the bot's class `Bot`",
                several.len(),
                several.join(", ")
            ),
        )),
    }
}

/// The line of the innermost frame of `error` that is in the bot's own source.
fn bot_line(error: &MontyException, bot_lines: u32) -> Option<u32> {
    error
        .traceback()
        .iter()
        .rev()
        .map(|frame| frame.start.line)
        .find(|line| (1..=bot_lines).contains(line))
}

/// A source Monty refused to compile.
fn compile_error(error: &MontyException, bot_lines: u32) -> BotError {
    let name = error.exc_type().to_string();
    let message = error.message().unwrap_or_default();
    let text = match error.exc_type() {
        ExcType::NotImplementedError => {
            format!("the source uses Python that Monty does not support: {message}")
        }
        _ => format!("the source does not compile: {name}: {message}"),
    };
    BotError::new(BotErrorKind::BadSource, text).at_line(bot_line(error, bot_lines))
}

/// Turns an exception that ended the run into a [`BotError`].
fn classify(error: &MontyException, phase: Phase, bot_lines: u32, class: &str) -> BotError {
    let location = match phase {
        Phase::Load => "the top-level code".to_owned(),
        Phase::Construct => format!("{class}.__init__"),
        Phase::Handler(name) => name.to_owned(),
    };
    let line = bot_line(error, bot_lines);
    let message = error.message().unwrap_or_default();
    match error.exc_type() {
        // Monty's own time limit: uncatchable, raised with no frame. A bot that raises
        // TimeoutError itself has a frame, and is only a bot that threw.
        ExcType::TimeoutError
            if error.traceback().is_empty() && message.starts_with("time limit exceeded") =>
        {
            BotError::new(BotErrorKind::CpuBudget, "time limit exceeded")
        }
        ExcType::MemoryError => BotError::new(
            BotErrorKind::Memory,
            format!(
                "{location} ran out of memory (the cap is per event; keep state and data small): {message}"
            ),
        )
        .at_line(line),
        ExcType::RecursionError => BotError::new(
            BotErrorKind::StackOverflow,
            format!("{location} overflowed the stack (recursion too deep)"),
        )
        .at_line(line),
        other => {
            let text = if message.is_empty() {
                format!("{location} threw {other}")
            } else {
                format!("{location} threw {other}: {message}")
            };
            BotError::new(BotErrorKind::Threw, text).at_line(line)
        }
    }
}
