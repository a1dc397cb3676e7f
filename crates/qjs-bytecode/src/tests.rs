use rquickjs::{Context, Runtime, Value};

use super::Bytecode;

fn fresh() -> Context {
    let runtime = Runtime::new().expect("runtime");
    Context::full(&runtime).expect("context")
}

#[test]
fn a_script_compiled_once_runs_in_other_runtimes_with_its_own_globals() {
    let source =
        "class Bot { answer() { return 6 * 7; } }\nvar calls = (globalThis.calls || 0) + 1;";
    let code = fresh().with(|ctx| Bytecode::compile(&ctx, source, "bot.js").expect("compiles"));
    assert!(!code.is_empty());
    for _ in 0..3 {
        fresh().with(|ctx| {
            code.run(&ctx).expect("runs");
            // Top-level `class` is a global lexical binding and `var` a global property, as in
            // an evaluated script (a module would have hidden both).
            let answer: i32 = ctx.eval("new Bot().answer()").expect("Bot");
            assert_eq!(answer, 42);
            let calls: i32 = ctx.eval("calls").expect("calls");
            assert_eq!(calls, 1, "each runtime starts from nothing");
        });
    }
}

#[test]
fn scripts_keep_sloppy_mode_and_their_file_and_lines() {
    let source = "undeclared = 1;\nfunction fail() {\n  throw new Error('here');\n}\nfail();";
    let code = fresh().with(|ctx| Bytecode::compile(&ctx, source, "lines.js").expect("compiles"));
    fresh().with(|ctx| {
        let error = code.run(&ctx).expect_err("throws");
        assert!(matches!(error, rquickjs::Error::Exception));
        let thrown: Value = ctx.catch();
        let stack: String = thrown
            .as_object()
            .expect("an Error")
            .get("stack")
            .expect("stack");
        assert!(stack.contains("lines.js:3"), "{stack}");
        let undeclared: i32 = ctx.eval("undeclared").expect("sloppy assignment");
        assert_eq!(undeclared, 1);
    });
}

#[test]
fn a_syntax_error_is_thrown_as_evaluating_would_throw_it() {
    fresh().with(|ctx| {
        let error = Bytecode::compile(&ctx, "class {", "broken.js").expect_err("refused");
        assert!(matches!(error, rquickjs::Error::Exception));
        let thrown: Value = ctx.catch();
        let name: String = thrown
            .as_object()
            .expect("an Error")
            .get("name")
            .expect("name");
        assert_eq!(name, "SyntaxError");
    });
    fresh().with(|ctx| {
        assert!(Bytecode::compile(&ctx, "a\0b", "nul.js").is_err());
    });
}

#[test]
fn a_runtime_out_of_memory_fails_to_read_instead_of_crashing() {
    let source = format!("var big = [{}];", "1,".repeat(20_000));
    let code = fresh().with(|ctx| Bytecode::compile(&ctx, &source, "big.js").expect("compiles"));
    let runtime = Runtime::new().expect("runtime");
    let context = Context::full(&runtime).expect("context");
    runtime.set_memory_limit(runtime.memory_usage().malloc_size as usize + 4096);
    context.with(|ctx| {
        assert!(code.run(&ctx).is_err());
    });
}
