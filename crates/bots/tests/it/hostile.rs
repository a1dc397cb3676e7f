//! Abuse attempts, one per test. Each shows the attempt ends with a clear `BotErrorKind` (or is
//! harmless) and that the next, normal event runs fine in the same process.
//!
//! The same file runs twice: here, in this thread, and in `crates/workers/tests/hostile.rs`,
//! through confined worker processes, with `run_event` from that harness's `runner`.

use std::time::Duration;

use bots::{BotErrorKind, BotSource, Event, Limits};

use crate::support::{
    assert_contained, assert_healthy, context, init, init_on_the_clock, message, on_init,
    relaxed_limits, run_event, source, texts,
};

// --- No way out: files, network, modules, host objects -------------------------------------

#[test]
fn require_does_not_exist() {
    let error = assert_contained(
        init(&on_init(r#"require("fs").readFileSync("/etc/passwd");"#)),
        BotErrorKind::Threw,
    );
    assert!(error.message.contains("ReferenceError"), "{error}");
}

#[test]
fn static_import_is_a_syntax_error_in_a_script() {
    let error = assert_contained(
        init("import fs from 'fs';\nclass Bot {}"),
        BotErrorKind::BadSource,
    );
    assert_eq!(error.line, Some(1), "{error}");
}

#[test]
fn dynamic_import_finds_no_loader() {
    assert_contained(
        init(&on_init(r#"return import("os");"#)),
        BotErrorKind::Threw,
    );
    // Awaited inside an async handler the failure surfaces the same way.
    assert_contained(
        init("class Bot { async on_init() { await import('./std.js'); } }"),
        BotErrorKind::Threw,
    );
}

#[test]
fn fetch_and_xhr_do_not_exist() {
    assert_contained(
        init(&on_init(r#"fetch("https://example.com");"#)),
        BotErrorKind::Threw,
    );
    assert_contained(
        init(&on_init(r#"new XMLHttpRequest();"#)),
        BotErrorKind::Threw,
    );
}

#[test]
fn std_and_os_modules_are_absent() {
    assert_contained(
        init(&on_init(r#"std.open("/etc/passwd", "r");"#)),
        BotErrorKind::Threw,
    );
    assert_contained(
        init(&on_init(r#"os.exec(["/bin/sh"]);"#)),
        BotErrorKind::Threw,
    );
}

#[test]
fn the_global_object_holds_only_the_language() {
    let reaction = init(&on_init(
        r#"ctx.post(Object.getOwnPropertyNames(Function("return this")()).sort().join(" "));"#,
    ))
    .expect("listing globals is allowed");
    let globals = texts(&reaction)[0].to_owned();
    for ambient in [
        "require",
        "process",
        "std",
        "os",
        "fetch",
        "XMLHttpRequest",
        "performance",
        "WeakRef",
        "FinalizationRegistry",
        "setTimeout",
        "setInterval",
        "print",
        "scriptArgs",
        "Bot_host",
    ] {
        assert!(
            !globals.split(' ').any(|name| name == ambient),
            "{ambient} is reachable: {globals}"
        );
    }
    assert_healthy();
}

#[test]
fn eval_and_function_constructor_reach_only_the_sandbox() {
    // Both paths lead to the same global object the bot already has; nothing of the host is
    // there, and the host functions themselves are plain functions with no hidden state.
    let reaction = init(&on_init(
        r#"
        const viaFunction = Function("return this")();
        const viaEval = (0, eval)("this");
        const viaHost = ctx.post.constructor("return this")();
        ctx.post(String(viaFunction === globalThis && viaEval === globalThis && viaHost === globalThis));
        ctx.post(Object.getOwnPropertyNames(ctx.post).sort().join(","));
        "#,
    ))
    .expect("eval is allowed inside the sandbox");
    assert_eq!(texts(&reaction), ["true", "length,name"]);
    assert_healthy();
}

#[test]
fn host_functions_cannot_be_constructed_or_replaced() {
    // Host functions are plain functions, not constructors: `new` is the engine's TypeError.
    let error = assert_contained(init(&on_init(r#"new ctx.post("x");"#)), BotErrorKind::Threw);
    assert!(
        error.message.contains("TypeError: not a constructor"),
        "{error}"
    );
    // `ctx` is frozen: strict-mode assignment throws.
    assert_contained(
        init(&on_init(r#"ctx.post = () => {}; "#)),
        BotErrorKind::Threw,
    );
}

// --- Prototype pollution aimed at the host ---------------------------------------------------

#[test]
fn overriding_json_globals_does_not_change_what_the_host_reads() {
    let reaction = init(&on_init(
        r#"
        JSON.stringify = () => '{"forged": true}';
        JSON.parse = () => ({forged: true});
        ctx.set_state({real: 1});
        ctx.post({data: {real: 2}});
        ctx.post(String(ctx.get_state().real));
        "#,
    ))
    .expect("the host uses the engine's own JSON");
    assert_eq!(reaction.state, Some(serde_json::json!({"real": 1})));
    assert_eq!(
        reaction.posts[0].body.data,
        Some(serde_json::from_str(r#"{"real": 2}"#).expect("valid"))
    );
    assert_eq!(texts(&reaction)[1], "1");
    assert_healthy();
}

#[test]
fn object_prototype_to_json_only_shapes_the_bots_own_values() {
    let reaction = init(&on_init(
        r#"
        Object.prototype.toJSON = function () { return {shaped: true}; };
        ctx.set_state({a: 1});
        ctx.post(String(ctx.players().length));
        "#,
    ))
    .expect("toJSON is ordinary JSON behaviour");
    // The bot chose how its own state serializes; the host's values (players) were untouched.
    assert_eq!(reaction.state, Some(serde_json::json!({"shaped": true})));
    assert_eq!(texts(&reaction), ["2"]);
    assert_healthy();
}

#[test]
fn poisoned_array_prototype_does_not_break_host_marshalling() {
    let reaction = init(&on_init(
        r#"
        Array.prototype.push = () => { throw new Error("poisoned push"); };
        Array.prototype.map = () => { throw new Error("poisoned map"); };
        Array.prototype[Symbol.iterator] = function* () { while (true) {} };
        const players = ctx.players();
        ctx.post(players[0].slot + "," + players[1].slot);
        ctx.set_state({list: [1, 2, 3]});
        "#,
    ))
    .expect("host arrays are built by the engine's JSON parser");
    assert_eq!(texts(&reaction), ["alice,bob"]);
    assert_eq!(reaction.state, Some(serde_json::json!({"list": [1, 2, 3]})));
    // An accessor on Array.prototype[0] breaks the engine's own JSON.stringify for this bot;
    // the host reports it instead of recording something else.
    let error = assert_contained(
        init(&on_init(
            r#"
            Object.defineProperty(Array.prototype, "0", { get() { throw new Error("poisoned index"); } });
            ctx.post(ctx.players()[1].slot);
            ctx.set_state({list: [1, 2, 3]});
            "#,
        )),
        BotErrorKind::BadState,
    );
    assert!(error.message.starts_with("ctx.set_state(state)"), "{error}");
}

#[test]
fn inherited_getter_on_object_prototype_is_bounded() {
    // The host reads `body.text`; a getter planted on Object.prototype runs as bot code, under
    // the same budget.
    assert_contained(
        init_on_the_clock(&on_init(
            r#"
            Object.defineProperty(Object.prototype, "text", { get() { while (true) {} } });
            ctx.post({data: {x: 1}});
            "#,
        )),
        BotErrorKind::CpuBudget,
    );
}

// --- Loops wherever bot code can run --------------------------------------------------------

#[test]
fn while_true_inside_try_catch_cannot_catch_the_budget() {
    let error = assert_contained(
        init_on_the_clock(&on_init(
            r#"
            for (;;) {
                try { while (true) {} } catch (e) { ctx.post("caught " + e); } finally { ctx.post("finally"); }
            }
            "#,
        )),
        BotErrorKind::CpuBudget,
    );
    assert!(error.message.contains("50 ms"), "{error}");
}

#[test]
fn loop_in_a_body_getter() {
    assert_contained(
        init_on_the_clock(&on_init(r#"ctx.post({ get text() { while (true) {} } });"#)),
        BotErrorKind::CpuBudget,
    );
}

#[test]
fn loop_in_to_json_during_set_state() {
    assert_contained(
        init_on_the_clock(&on_init(r#"ctx.set_state({ toJSON() { for (;;) {} } });"#)),
        BotErrorKind::CpuBudget,
    );
}

#[test]
fn loop_in_a_sort_comparator() {
    assert_contained(
        init_on_the_clock(&on_init(r#"[3, 1, 2].sort(() => { while (true) {} });"#)),
        BotErrorKind::CpuBudget,
    );
}

#[test]
fn loop_in_a_promise_job_runs_under_the_budget() {
    assert_contained(
        init_on_the_clock(&on_init(
            r#"Promise.resolve().then(() => { while (true) {} }); ctx.post("before the job");"#,
        )),
        BotErrorKind::CpuBudget,
    );
}

/// Each link of this chain waits on the next, so it grows in memory as well as in time.
const ENDLESS_CHAIN: &str = r#"const again = () => Promise.resolve().then(again); again();"#;

#[test]
fn endless_chain_of_promise_jobs() {
    // A heap this large leaves the time budget as the cap the chain meets first.
    let limits = Limits {
        memory_bytes: 512 << 20,
        ..Limits::default()
    };
    assert_contained(
        run_event(
            &source(&on_init(ENDLESS_CHAIN)),
            &context(),
            &Event::Init,
            &limits,
        ),
        BotErrorKind::CpuBudget,
    );
}

#[test]
fn endless_chain_of_promise_jobs_in_a_small_heap() {
    // A callback that runs out of memory only rejects its promise, and the chain unwinds and
    // frees itself: the event must still fail.
    let limits = Limits {
        memory_bytes: 4 << 20,
        cpu: Duration::from_secs(5),
        ..Limits::default()
    };
    assert_contained(
        run_event(
            &source(&on_init(ENDLESS_CHAIN)),
            &context(),
            &Event::Init,
            &limits,
        ),
        BotErrorKind::Memory,
    );
}

#[test]
fn loop_in_a_handler_getter_and_in_a_global_bot_getter() {
    assert_contained(
        init_on_the_clock("class Bot { get on_init() { while (true) {} } }"),
        BotErrorKind::CpuBudget,
    );
    assert_contained(
        init_on_the_clock("Object.defineProperty(globalThis, 'Bot', { get() { for (;;) {} } });"),
        BotErrorKind::CpuBudget,
    );
}

#[test]
fn catastrophic_regex_backtracking_is_interrupted() {
    assert_contained(
        init_on_the_clock(&on_init(r#"/^(a+)+$/.test("a".repeat(40) + "b");"#)),
        BotErrorKind::CpuBudget,
    );
}

#[test]
fn an_error_whose_message_getter_loops_cannot_hang_the_host() {
    assert_contained(
        init_on_the_clock(&on_init(
            r#"const e = new Error("x"); Object.defineProperty(e, "message", { get() { for (;;) {} } }); throw e;"#,
        )),
        BotErrorKind::CpuBudget,
    );
}

#[test]
fn budget_is_configurable() {
    let limits = Limits {
        cpu: Duration::from_millis(5),
        ..Limits::default()
    };
    let bot = source(&on_init("for (;;) {}"));
    let error = run_event(&bot, &context(), &Event::Init, &limits).unwrap_err();
    assert_eq!(error.kind, BotErrorKind::CpuBudget);
    assert!(error.message.contains("5 ms"), "{error}");
    assert_healthy();
}

// --- Memory and stack ------------------------------------------------------------------------

#[test]
fn huge_strings_hit_the_memory_cap() {
    assert_contained(
        init(&on_init(
            r#"const s = "x".repeat(1 << 26); ctx.post(s.slice(0, 5));"#,
        )),
        BotErrorKind::Memory,
    );
    // Doubling builds ropes that take little memory until the engine's length limit stops it.
    let error = init(&on_init(r#"let s = "x"; for (;;) { s += s; }"#)).unwrap_err();
    assert!(
        matches!(error.kind, BotErrorKind::Memory | BotErrorKind::Threw),
        "{error}"
    );
    assert_healthy();
}

#[test]
fn growing_an_array_hits_the_memory_cap() {
    assert_contained(
        init(&on_init(
            r#"const keep = []; for (;;) { keep.push(new Array(10000).fill(keep.length)); }"#,
        )),
        BotErrorKind::Memory,
    );
}

#[test]
fn a_huge_typed_array_is_refused() {
    let error = init(&on_init(r#"new Uint8Array(1 << 30);"#)).unwrap_err();
    assert!(
        matches!(error.kind, BotErrorKind::Memory | BotErrorKind::Threw),
        "{error}"
    );
    assert_healthy();
}

#[test]
fn catching_out_of_memory_does_not_lift_the_cap() {
    // The bot may catch the error, but whatever it keeps still counts against the cap, so a bot
    // that insists ends on the cap or on the clock.
    let error = init_on_the_clock(&on_init(
        r#"
        const keep = [];
        for (;;) {
            try { for (;;) { keep.push("y".repeat(1 << 20)); } } catch (e) {}
        }
        "#,
    ))
    .unwrap_err();
    assert!(
        matches!(error.kind, BotErrorKind::Memory | BotErrorKind::CpuBudget),
        "{error}"
    );
    assert_healthy();
}

#[test]
fn deep_recursion_hits_the_stack_cap() {
    assert_contained(
        init(&on_init(r#"const down = (n) => down(n + 1) + 1; down(0);"#)),
        BotErrorKind::StackOverflow,
    );
}

#[test]
fn deeply_nested_state_is_refused_not_crashed_on() {
    let error = init(&on_init(
        r#"let o = {}; for (let i = 0; i < 10000; i++) { o = {o}; } ctx.set_state(o);"#,
    ))
    .unwrap_err();
    assert!(
        matches!(
            error.kind,
            BotErrorKind::BadState | BotErrorKind::StackOverflow
        ),
        "{error}"
    );
    assert_healthy();
}

// --- Caps on what a bot produces -------------------------------------------------------------

#[test]
fn post_flood_is_capped_even_when_the_refusal_is_caught() {
    let error = assert_contained(
        init(&on_init(
            r#"for (let i = 0; i < 1000; i++) { try { ctx.post("spam " + i); } catch (e) {} }"#,
        )),
        BotErrorKind::TooManyPosts,
    );
    assert!(error.message.contains("20"), "{error}");
    // Exactly the cap is fine.
    let reaction = init(&on_init(
        r#"for (let i = 0; i < 20; i++) ctx.post("ok " + i);"#,
    ))
    .expect("20 posts are allowed");
    assert_eq!(reaction.posts.len(), 20);
}

#[test]
fn state_bloat_is_refused() {
    assert_contained(
        init(&on_init(r#"ctx.set_state({blob: "x".repeat(70000)});"#)),
        BotErrorKind::StateTooLarge,
    );
}

#[test]
fn giant_source_is_refused_before_it_runs() {
    let code = format!(
        "// {}\nclass Bot {{}}",
        "x".repeat(bots::limits::MAX_SOURCE_BYTES)
    );
    let error = BotSource::new("giant.js", code).unwrap_err();
    assert_eq!(error.kind, BotErrorKind::BadSource);
    assert_healthy();
}

#[test]
fn oversized_post_bodies_follow_the_message_caps() {
    assert_contained(
        init(&on_init(r#"ctx.post("x".repeat(20000));"#)),
        BotErrorKind::BadPost,
    );
    assert_contained(
        init(&on_init(r#"ctx.post({data: {blob: "x".repeat(20000)}});"#)),
        BotErrorKind::BadPost,
    );
    assert_contained(
        init(&on_init(
            r#"let d = 1; for (let i = 0; i < 40; i++) d = [d]; ctx.post({data: {d}});"#,
        )),
        BotErrorKind::BadPost,
    );
}

// --- Odd values -------------------------------------------------------------------------------

#[test]
fn throwing_non_error_values() {
    for (thrown, expected) in [
        ("42", "the number 42"),
        (r#""plain string""#, r#"the string "plain string""#),
        ("null", "threw null"),
        ("undefined", "threw undefined"),
        ("Symbol('s')", "a symbol"),
        ("{code: 7}", r#"the value {"code":7}"#),
        ("{ toString() { for (;;) {} } }", "the value {}"),
    ] {
        let error = assert_contained(
            init(&on_init(&format!("throw {thrown};"))),
            BotErrorKind::Threw,
        );
        assert!(error.message.contains(expected), "{thrown}: {error}");
    }
}

#[test]
fn weird_return_values_from_handlers_are_ignored() {
    for returned in [
        "Symbol('x')",
        "10n ** 100n",
        "new Proxy({}, { get() { for (;;) {} } })",
        "new Promise(() => {})",
        "{ then() { for (;;) {} } }",
        "(function* () { for (;;) yield 1; })()",
    ] {
        let reaction = init(&on_init(&format!(
            r#"ctx.post("done"); return {returned};"#
        )))
        .unwrap_or_else(|error| panic!("{returned}: {error}"));
        assert_eq!(texts(&reaction), ["done"], "{returned}");
    }
    assert_healthy();
}

#[test]
fn rejected_async_handler_fails_the_event() {
    let error = assert_contained(
        init(
            "class Bot { constructor(ctx) { this.ctx = ctx; } async on_init() { this.ctx.post('half'); await null; throw new TypeError('late'); } }",
        ),
        BotErrorKind::Threw,
    );
    assert!(error.message.contains("late"), "{error}");
}

#[test]
fn symbols_bigints_and_cycles_in_bodies() {
    for body in [
        "Symbol('x')",
        "{data: {n: 10n}}",
        "{data: {s: Symbol('x')}}",
        "(() => { const a = {}; a.self = a; return {data: a}; })()",
        "{text: 42}",
        "{data: [1, 2]}",
        "{msg: 'unknown field'}",
        "[1, 2]",
        "() => 1",
        "{}",
        "''",
    ] {
        let error = assert_contained(
            init(&on_init(&format!(
                "try {{ ctx.post({body}); }} catch (e) {{}}"
            ))),
            BotErrorKind::BadPost,
        );
        assert!(
            error.message.starts_with("ctx.post(body)"),
            "{body}: {error}"
        );
    }
}

#[test]
fn lone_surrogates_in_text_do_not_break_the_host() {
    let result = init(&on_init(r#"ctx.post("broken \uD800 pair");"#));
    match result {
        Ok(reaction) => assert_eq!(reaction.posts.len(), 1),
        Err(error) => assert_eq!(error.kind, BotErrorKind::BadPost, "{error}"),
    }
    assert_healthy();
}

#[test]
fn ctx_functions_called_with_wrong_types() {
    for call in [
        "ctx.random_int('1', {})",
        "ctx.random_int(1.5, 3)",
        "ctx.random_int(10, 1)",
        "ctx.random_int(0, 2 ** 60)",
        "ctx.random_bytes(-1)",
        "ctx.random_bytes(1e9)",
        "ctx.random_bytes({ valueOf() { for (;;) {} } })",
        "ctx.sha256(42)",
        "ctx.sha256()",
        "ctx.commit(42, 'ab')",
        "ctx.commit('42', 'abcd')",
        "ctx.commit('42', 'zz'.repeat(16))",
    ] {
        let error = assert_contained(
            init(&on_init(&format!("try {{ {call}; }} catch (e) {{}}"))),
            BotErrorKind::BadArgument,
        );
        assert!(error.message.starts_with("ctx."), "{call}: {error}");
    }
}

#[test]
fn bad_state_values() {
    for value in ["undefined", "() => 1", "Symbol('x')", "{n: 1n}", ""] {
        assert_contained(
            init(&on_init(&format!(
                "try {{ ctx.set_state({value}); }} catch (e) {{}}"
            ))),
            BotErrorKind::BadState,
        );
    }
}

#[test]
fn private_post_to_an_unknown_slot() {
    assert_contained(
        init(&on_init(r#"ctx.post_to("mallory", "psst");"#)),
        BotErrorKind::BadPost,
    );
    assert_contained(
        init(&on_init(
            r#"ctx.post_to({toString() { return "alice"; }}, "psst");"#,
        )),
        BotErrorKind::BadArgument,
    );
}

#[test]
fn reentrant_host_calls_from_getters() {
    let reaction = init(&on_init(
        r#"
        ctx.post({ get text() { ctx.post("inner"); return "outer"; } });
        ctx.set_state({ toJSON() { ctx.set_state("inner"); return "outer"; } });
        "#,
    ))
    .expect("re-entrant calls are just calls");
    assert_eq!(texts(&reaction), ["inner", "outer"]);
    assert_eq!(reaction.state, Some(serde_json::json!("outer")));
    assert_healthy();
}

#[test]
fn failed_events_keep_nothing() {
    // Posts and state made before the failure are dropped with it.
    assert_contained(
        init(&on_init(
            r#"ctx.post("made it"); ctx.set_state({x: 1}); throw new Error("then failed");"#,
        )),
        BotErrorKind::Threw,
    );
}

#[test]
fn broken_sources_are_bad_source() {
    let error = assert_contained(
        init("class Bot {\n  on_init( {\n}"),
        BotErrorKind::BadSource,
    );
    assert!(error.line.is_some(), "{error}");
    assert_contained(init("const notABot = 1;"), BotErrorKind::BadSource);
    assert_contained(init("var Bot = () => {};"), BotErrorKind::BadSource);
    assert_contained(
        init("class Bot { }\nBot.prototype.on_init = 5;"),
        BotErrorKind::BadSource,
    );
    assert_contained(init("class Bot {}\0"), BotErrorKind::BadSource);
    let error = assert_contained(init("class Bot {}\n\nnull.boom;"), BotErrorKind::Threw);
    assert_eq!(error.line, Some(3), "{error}");
}

#[test]
fn messages_are_length_capped() {
    let error = assert_contained(
        init(&on_init(r#"throw new Error("e".repeat(100000));"#)),
        BotErrorKind::Threw,
    );
    assert!(error.message.chars().count() <= bots::error::MAX_MESSAGE_CHARS + 1);
}

#[test]
fn a_message_event_cannot_see_past_its_caps_either() {
    let bot = source(
        "class Bot { constructor(ctx) { this.ctx = ctx; } on_message(m) { for (;;) this.ctx.post(m.body.text); } }",
    );
    let error =
        run_event(&bot, &context(), &message("alice", "hi"), &relaxed_limits()).unwrap_err();
    assert_eq!(error.kind, BotErrorKind::TooManyPosts);
    assert_healthy();
}

#[test]
fn memory_and_stack_caps_are_configurable() {
    let tiny_heap = Limits {
        memory_bytes: 64 * 1024,
        ..relaxed_limits()
    };
    let bot = source(&on_init("ctx.post('hi');"));
    let error = run_event(&bot, &context(), &Event::Init, &tiny_heap).unwrap_err();
    assert_eq!(error.kind, BotErrorKind::Memory, "{error}");

    let depth_probe = source(&on_init(
        "let depth = 0; const down = () => { depth++; down(); }; try { down(); } catch (e) {} ctx.post(String(depth));",
    ));
    let depth_with = |stack_bytes| {
        let limits = Limits {
            stack_bytes,
            ..relaxed_limits()
        };
        let reaction = run_event(&depth_probe, &context(), &Event::Init, &limits)
            .expect("a caught overflow is the bot's business");
        texts(&reaction)[0].parse::<u32>().expect("a number")
    };
    assert!(depth_with(64 * 1024) < depth_with(512 * 1024));
    assert_healthy();
}

#[test]
fn stack_trace_hooks_run_as_bot_code_under_the_same_rules() {
    // QuickJS calls Error.prepareStackTrace whenever an error is built, including the host's
    // own refusals: re-entering ctx from there must not upset the host's bookkeeping.
    assert_contained(
        init(&on_init(
            r#"
            Error.prepareStackTrace = () => { ctx.post("from the hook"); return "trace"; };
            try { ctx.random_int("a", 1); } catch (e) {}
            "#,
        )),
        BotErrorKind::BadArgument,
    );
    assert_contained(
        init_on_the_clock(&on_init(
            r#"Error.prepareStackTrace = () => { for (;;) {} }; null.boom;"#,
        )),
        BotErrorKind::CpuBudget,
    );
}

#[test]
fn memory_exhausted_inside_a_promise_job() {
    // The memory cap is what is under test: `init`'s generous time budget keeps a slow (debug,
    // busy) machine from running out of time first.
    assert_contained(
        init(&on_init(
            r#"Promise.resolve().then(() => {
                ctx.post("half done");
                const hoard = [];
                while (true) hoard.push(new Array(4096).fill(7));
            });"#,
        )),
        BotErrorKind::Memory,
    );
}
