//! The sans-IO contract every protocol core follows, and the one generic actix actor ([`Shell`])
//! that runs any core: it stamps inputs with the clock, keeps exactly one timer armed at the core's
//! `next_timeout()`, and hands outputs to the subsystem's [`Wiring`]. Subsystem actors are this
//! shell plus a wiring; all protocol logic stays in the cores. A wiring that applies an effect
//! on the spot (a storage read or write: STYLE 13) answers with an input ([`Outlet`]), handed to
//! the core within the same flush: no mailbox hop per effect.

use crate::time::{Clock, Millis};
use actix::{Actor, ActorContext, AsyncContext, Context, Handler, Message, SpawnHandle};

/// A protocol state machine: inputs in, outputs out, no I/O, no clock, no OS randomness.
pub trait Core: Unpin + 'static {
    type Input: 'static;
    type Output: 'static;
    fn handle(&mut self, now: Millis, input: Self::Input);
    fn handle_timeout(&mut self, now: Millis);
    /// When `handle_timeout` wants to be called next.
    fn next_timeout(&self) -> Option<Millis>;
    fn poll_output(&mut self) -> Option<Self::Output>;
    /// Assert the core's invariants (`debug_assert!`: on in tests and in the simulator's
    /// builds, free otherwise). The shell calls it after every input and timeout.
    fn check_invariants(&self) {}
}

/// Where a subsystem's outputs go: the transport, other actors, the observer.
pub trait Wiring<O>: Unpin + 'static {
    fn route(&mut self, output: O);
}

/// A boxed wiring is a wiring: a subsystem's actor is `Shell<Core, Box<dyn Wiring<Output>>>`, so
/// the subsystem names no other subsystem; which actor its outputs reach is decided where the
/// node is assembled ([`crate::wiring`]).
impl<O: 'static> Wiring<O> for Box<dyn Wiring<O>> {
    fn route(&mut self, output: O) {
        (**self).route(output);
    }
}

/// What a shell hands its core's outputs to: a wiring, which may answer an output at once with
/// an input for the same core (the result of a storage operation it applied); the shell hands
/// that to the core before it polls the next output. A boxed [`Wiring`] never answers, so every
/// subsystem actor `Shell<Core, Box<dyn Wiring<Output>>>` is one as it is.
pub trait Outlet<C: Core>: Unpin + 'static {
    fn route(&mut self, output: C::Output) -> Option<C::Input>;
}

impl<C: Core> Outlet<C> for Box<dyn Wiring<C::Output>> {
    fn route(&mut self, output: C::Output) -> Option<C::Input> {
        (**self).route(output);
        None
    }
}

/// A boxed answering wiring (the subsystem's actor names no other subsystem's wiring).
impl<C: Core> Outlet<C> for Box<dyn Outlet<C>> {
    fn route(&mut self, output: C::Output) -> Option<C::Input> {
        (**self).route(output)
    }
}

/// Answers one flush feeds back to its core, at most (guess: a surplus round that drops a few
/// thousand chunks stays far below). Past it something loops (an answer that always causes the
/// output it answers): the rest go through the mailbox, so other actors still run.
pub const MAX_ANSWERS_PER_FLUSH: usize = 100_000;

/// Input to a shell's core.
pub struct In<I>(pub I);

impl<I: 'static> Message for In<I> {
    type Result = ();
}

/// Stop the actor (nodes are stopped explicitly: their timers would keep them alive).
pub struct Shutdown;

impl Message for Shutdown {
    type Result = ();
}

/// The actor around a core.
pub struct Shell<C: Core, W: Outlet<C>> {
    core: C,
    wiring: W,
    clock: Clock,
    timer: Option<(Millis, SpawnHandle)>,
}

impl<C: Core, W: Outlet<C>> Shell<C, W> {
    pub fn new(core: C, wiring: W, clock: Clock) -> Self {
        Shell { core, wiring, clock, timer: None }
    }

    /// The core, for questions its actor answers without an input (a reading for the operator:
    /// read only, so the shell stays the core's one writer).
    pub fn core(&self) -> &C {
        &self.core
    }

    /// The clock's `now`, as inputs are stamped.
    pub fn now(&self) -> Millis {
        self.clock.now()
    }

    fn flush(&mut self, ctx: &mut Context<Self>) {
        self.core.check_invariants();
        let mut answers = 0;
        while let Some(out) = self.core.poll_output() {
            let Some(answer) = self.wiring.route(out) else { continue };
            answers += 1;
            debug_assert!(answers <= MAX_ANSWERS_PER_FLUSH, "a wiring's answers never end");
            if answers > MAX_ANSWERS_PER_FLUSH {
                tracing::error!(answers, "a wiring's answers never end: the rest go through the mailbox");
                ctx.notify(In(answer));
                continue;
            }
            let now = self.clock.now();
            self.core.handle(now, answer);
            self.core.check_invariants();
        }
        self.arm(ctx);
    }

    /// Keep one timer at the core's deadline: re-arm only when the deadline moved earlier or the
    /// armed one has fired, so a busy actor does not churn timers.
    fn arm(&mut self, ctx: &mut Context<Self>) {
        let Some(next) = self.core.next_timeout() else {
            if let Some((_, h)) = self.timer.take() {
                ctx.cancel_future(h);
            }
            return;
        };
        if let Some((armed, h)) = self.timer {
            if armed <= next {
                return;
            }
            ctx.cancel_future(h);
        }
        let delay = self.clock.instant_at(next).saturating_duration_since(tokio::time::Instant::now());
        let handle = ctx.run_later(delay, move |act, ctx| {
            act.timer = None;
            let now = act.clock.now();
            act.core.handle_timeout(now);
            act.flush(ctx);
        });
        self.timer = Some((next, handle));
    }
}

impl<C: Core, W: Outlet<C>> Actor for Shell<C, W> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.flush(ctx);
    }
}

impl<C: Core, W: Outlet<C>> Handler<In<C::Input>> for Shell<C, W> {
    type Result = ();

    fn handle(&mut self, msg: In<C::Input>, ctx: &mut Context<Self>) {
        let now = self.clock.now();
        self.core.handle(now, msg.0);
        self.flush(ctx);
    }
}

impl<C: Core, W: Outlet<C>> Handler<Shutdown> for Shell<C, W> {
    type Result = ();

    fn handle(&mut self, _: Shutdown, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

/// A bounded FIFO output queue shared by the cores.
pub type Outputs<O> = std::collections::VecDeque<O>;

/// What every core hears about links, from the connection manager (only proved links exist for
/// them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkEvent {
    Up {
        peer: crate::PeerId,
        outbound: bool,
    },
    /// `clean`: closed on purpose by either side (a `Bye`), not lost.
    Down {
        peer: crate::PeerId,
        clean: bool,
    },
    /// A link asked for could not be made (now, or at all: see the error).
    DialFailed {
        peer: crate::PeerId,
        error: crate::links::DialError,
    },
}

/// What any core may ask of the outside world. Opening and closing links is not here: only the
/// connection manager does that ([`crate::links`]); others ask it for links.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    Send {
        to: crate::PeerId,
        msg: crate::wire::Message,
    },
    /// The same message to several peers (encoded once).
    Broadcast {
        to: Vec<crate::PeerId>,
        msg: crate::wire::Message,
    },
    Event(crate::observer::Event),
    /// A peer misbehaved: the hook the reputation subsystem scores (today: reported as an event).
    Report {
        peer: crate::PeerId,
        offence: crate::observer::Offence,
    },
}
