//! QuickJS bytecode for classic scripts, compiled once and run in as many fresh runtimes as
//! needed.
//!
//! A bot's event runs in a brand-new QuickJS runtime, so that nothing leaks from one event into
//! the next. Parsing a large source again for every event was most of an event's cost (58% of a
//! chess move). QuickJS can serialize a compiled script (`JS_WriteObject`) and read it back into
//! another runtime (`JS_ReadObject`), as its own `qjsc` compiler does. rquickjs offers that only
//! for ES modules, whose semantics differ from the scripts bots are written as (strict mode, no
//! global `class Bot`), so this crate calls the engine directly.
//!
//! Reading bytecode is only sound for bytes the same engine wrote: QuickJS trusts them
//! completely. [`Bytecode`] can therefore only be made by [`Bytecode::compile`], in this process,
//! and [`Bytecode::run`] is safe to call with any value of it. The bytes are never read from
//! or written to anywhere else.
//!
//! The script runs exactly as if its source had been evaluated: the same global scope, the
//! same file name and line numbers in stack traces, the same exceptions.

use std::ffi::CString;
use std::ptr::NonNull;

use rquickjs::{Ctx, Error, qjs};

/// A classic script compiled by this process's QuickJS. Its bytes never leave the process.
#[derive(Debug)]
pub struct Bytecode {
    bytes: Vec<u8>,
}

impl Bytecode {
    /// Compiles `source` as a global script named `file_name`, without running it. A syntax
    /// error is thrown in `ctx` (and returned as [`Error::Exception`]), as evaluating the source
    /// would have thrown it.
    pub fn compile(ctx: &Ctx<'_>, source: &str, file_name: &str) -> Result<Self, Error> {
        let raw = ctx.as_raw().as_ptr();
        let length = c_size(source.len());
        // QuickJS reads the source up to a terminating NUL, which `CString` adds; a source with
        // a NUL inside is refused, as rquickjs's own `eval` refuses it.
        let source = CString::new(source)?;
        let file_name = CString::new(file_name)?;
        let flags = qjs::JS_EVAL_TYPE_GLOBAL | qjs::JS_EVAL_FLAG_COMPILE_ONLY;
        #[allow(unsafe_code)]
        // SAFETY: `raw` is the live context `ctx` borrows; both strings are NUL-terminated and
        // outlive the call, and `length` excludes the terminator, as `JS_Eval` requires.
        let function = unsafe {
            qjs::JS_Eval(
                raw,
                source.as_ptr(),
                length,
                file_name.as_ptr(),
                flag(flags),
            )
        };
        if is_exception(function) {
            return Err(Error::Exception);
        }
        let mut size: qjs::size_t = 0;
        #[allow(unsafe_code)]
        // SAFETY: `function` is the compiled script `JS_Eval` just returned to us; writing only
        // reads it, and `size` is a valid place for the length.
        let written = unsafe {
            qjs::JS_WriteObject(raw, &mut size, function, flag(qjs::JS_WRITE_OBJ_BYTECODE))
        };
        #[allow(unsafe_code)]
        // SAFETY: we own `function` (returned by `JS_Eval`) and use it no more after this.
        unsafe {
            qjs::JS_FreeValue(raw, function);
        }
        let Some(written) = NonNull::new(written) else {
            return Err(Error::Exception);
        };
        #[allow(unsafe_code)]
        // SAFETY: `JS_WriteObject` returned a buffer of exactly `size` initialized bytes, which
        // stays valid until we free it below.
        let bytes =
            unsafe { std::slice::from_raw_parts(written.as_ptr(), rust_size(size)) }.to_vec();
        #[allow(unsafe_code)]
        // SAFETY: the buffer came from this context's allocator and nothing refers to it now.
        unsafe {
            qjs::js_free(raw, written.as_ptr().cast());
        }
        Ok(Self { bytes })
    }

    /// Runs the script in `ctx`'s global scope, as `ctx.eval(source)` would: an exception it
    /// throws is left in `ctx` and returned as [`Error::Exception`]. The context may belong to
    /// any runtime, not only the one that compiled the script.
    pub fn run(&self, ctx: &Ctx<'_>) -> Result<(), Error> {
        let raw = ctx.as_raw().as_ptr();
        #[allow(unsafe_code)]
        // SAFETY: the bytes were written by `JS_WriteObject` of this same engine, in this
        // process (only `compile` makes a `Bytecode`, and nothing can change its bytes), which
        // is the one condition under which `JS_ReadObject` is sound. It copies what it keeps.
        let function = unsafe {
            qjs::JS_ReadObject(
                raw,
                self.bytes.as_ptr(),
                c_size(self.bytes.len()),
                flag(qjs::JS_READ_OBJ_BYTECODE),
            )
        };
        if is_exception(function) {
            return Err(Error::Exception);
        }
        // A script's top level reaches no Rust callback (the host installs none on the global
        // object), so no Rust panic can be pending here for rquickjs to resume.
        #[allow(unsafe_code)]
        // SAFETY: `function` is the script just read, owned by us; `JS_EvalFunction` takes it
        // over (and frees it), so it is not used again.
        let completion = unsafe { qjs::JS_EvalFunction(raw, function) };
        if is_exception(completion) {
            return Err(Error::Exception);
        }
        #[allow(unsafe_code)]
        // SAFETY: we own the script's completion value and only drop it.
        unsafe {
            qjs::JS_FreeValue(raw, completion);
        }
        Ok(())
    }

    /// The size of the compiled script, for a cache's accounting.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the compiled script has no bytes (never true of a script QuickJS wrote).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// The engine's flags are small `u32` constants that its functions take as `int`. Only the
/// bytecode flag is ever passed to reading and writing: no shared array buffers, and no
/// references kept into our buffer (`ROM_DATA`), since the bytes are copied in.
fn flag(bits: u32) -> i32 {
    i32::try_from(bits).expect("QuickJS flags fit in an int")
}

fn c_size(size: usize) -> qjs::size_t {
    qjs::size_t::try_from(size).expect("a size_t holds any usize here")
}

fn rust_size(size: qjs::size_t) -> usize {
    usize::try_from(size).expect("a usize holds any size_t here")
}

fn is_exception(value: qjs::JSValue) -> bool {
    #[allow(unsafe_code)]
    // SAFETY: reading a value's tag only looks at the value itself.
    unsafe {
        qjs::JS_IsException(value)
    }
}

#[cfg(test)]
mod tests;
