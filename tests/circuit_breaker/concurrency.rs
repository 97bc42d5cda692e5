//! Many threads and tasks at once, and clones sharing one circuit.

use crate::prelude::*;

// ===== concurrency =====

/// Counts calls in flight inside the inner service; decrements on completion or cancellation.
struct InFlight {
    now: Arc<AtomicUsize>,
}

impl InFlight {
    fn enter(now: &Arc<AtomicUsize>, max: &AtomicUsize) -> InFlight {
        let n = now.fetch_add(1, SeqCst) + 1;
        max.fetch_max(n, SeqCst);
        InFlight { now: now.clone() }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.now.fetch_sub(1, SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_half_open_probes_never_exceed_max_calls() {
    const MAX: u32 = 3;
    const TASKS: usize = 64;
    const ROUNDS: usize = 200;
    let (breaker, clock) = manual(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(SEC)
            .half_open_max_calls(MAX),
    );
    let in_flight = Arc::new(AtomicUsize::new(0));
    let max_seen = Arc::new(AtomicUsize::new(0));
    let entered = Arc::new(AtomicUsize::new(0));
    let inner = {
        let (in_flight, max_seen, entered) = (in_flight.clone(), max_seen.clone(), entered.clone());
        tower::service_fn(move |fail: bool| {
            let (in_flight, max_seen, entered) =
                (in_flight.clone(), max_seen.clone(), entered.clone());
            async move {
                entered.fetch_add(1, SeqCst);
                let _guard = InFlight::enter(&in_flight, &max_seen);
                for _ in 0..3 {
                    tokio::task::yield_now().await;
                }
                if fail {
                    Err(io::Error::other("boom"))
                } else {
                    Ok("ok")
                }
            }
        })
    };
    // Successes are ignored, so the breaker stays half-open for the whole test and every
    // admitted call is a probe.
    let layer = breaker
        .layer()
        .classifier(|r: &Result<&'static str, io::Error>| match r {
            Ok(_) => Outcome::Ignored,
            Err(_) => Outcome::Failure,
        });
    let mut svc = layer.layer(inner);
    inner_error(send_bool(&mut svc, true).await);
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(entered.swap(0, SeqCst), 1);
    max_seen.store(0, SeqCst);
    clock.advance(SEC);

    let admitted = Arc::new(AtomicUsize::new(0));
    let rejected = Arc::new(AtomicUsize::new(0));
    let cancelled = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let mut svc = svc.clone();
        let (admitted, rejected, cancelled) =
            (admitted.clone(), rejected.clone(), cancelled.clone());
        tasks.push(tokio::spawn(async move {
            for round in 0..ROUNDS {
                let mut fut = Box::pin(svc.ready().await.unwrap().call(false));
                let result = if (t + round) % 4 == 0 {
                    // Cancel after one poll (the inner call, if admitted, is pending).
                    match futures::poll!(&mut fut) {
                        Poll::Pending => {
                            cancelled.fetch_add(1, SeqCst);
                            drop(fut);
                            continue;
                        }
                        Poll::Ready(result) => result,
                    }
                } else {
                    fut.await
                };
                match result {
                    Ok(_) => {
                        admitted.fetch_add(1, SeqCst);
                    }
                    Err(err) => {
                        let open = err.downcast_ref::<CircuitOpen>().expect("only rejections");
                        assert_eq!(open.state(), State::HalfOpen);
                        rejected.fetch_add(1, SeqCst);
                    }
                }
                tokio::task::yield_now().await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }

    let max = max_seen.load(SeqCst);
    assert!(
        max <= MAX as usize,
        "{max} probes in flight at once, limit {MAX}"
    );
    assert!(max >= 1, "probes happened");
    assert!(admitted.load(SeqCst) > 0, "probes completed");
    assert!(
        rejected.load(SeqCst) > 0,
        "calls beyond the limit were rejected"
    );
    assert!(cancelled.load(SeqCst) > 0, "some probes were cancelled");
    assert!(entered.load(SeqCst) >= admitted.load(SeqCst));
    let snap = breaker.snapshot();
    assert_eq!(snap.state, State::HalfOpen);
    assert_eq!(snap.probes_in_flight, 0, "no slot leaked: {snap:?}");
    send_bool(&mut svc, false).await.unwrap();
}

async fn send_bool<S>(svc: &mut S, req: bool) -> Result<&'static str, BoxError>
where
    S: Service<bool, Response = &'static str, Error = BoxError>,
{
    svc.ready().await?.call(req).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_race_into_half_open_admits_exactly_max_calls() {
    const MAX: u32 = 3;
    const TASKS: usize = 64;
    let (breaker, clock) = manual(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(SEC)
            .half_open_max_calls(MAX),
    );
    let backend = Backend::default();
    let svc = breaker.layer().layer(backend.clone());
    inner_error(send(&mut svc.clone(), Req::Fail).await);
    clock.advance(SEC);

    let decided = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let mut svc = svc.clone();
        let (decided, barrier) = (decided.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let fut = svc.ready().await.unwrap().call(Req::Gated);
            decided.fetch_add(1, SeqCst);
            fut.await
        }));
    }
    let mut spins = 0;
    while decided.load(SeqCst) < TASKS {
        spins += 1;
        assert!(spins < 1_000_000, "tasks never got to call");
        tokio::task::yield_now().await;
    }
    assert_eq!(
        backend.calls(),
        1 + MAX as usize,
        "exactly MAX probes admitted"
    );
    assert_eq!(breaker.snapshot().probes_in_flight, MAX);
    assert_eq!(breaker.state(), State::HalfOpen);
    for _ in 0..MAX {
        backend.release(Ok("ok"));
    }
    let (mut ok, mut rejected) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => ok += 1,
            Err(err) => {
                assert_eq!(rejection::<()>(Err(err)).state(), State::HalfOpen);
                rejected += 1;
            }
        }
    }
    assert_eq!((ok, rejected), (MAX as usize, TASKS - MAX as usize));
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_closed_failures_trip_exactly_once() {
    const TASKS: usize = 64;
    const ROUNDS: usize = 50;
    let trips = Arc::new(AtomicUsize::new(0));
    let (breaker, _clock) = manual({
        let trips = trips.clone();
        CircuitBreaker::builder()
            .failure_threshold(10)
            .wait_in_open(secs(60))
            .on_state_change(move |_, c| {
                assert_eq!((c.from, c.to), (State::Closed, State::Open));
                trips.fetch_add(1, SeqCst);
            })
    });
    let backend = Backend::default();
    let svc = breaker.layer().layer(backend.clone());
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let mut svc = svc.clone();
        tasks.push(tokio::spawn(async move {
            let mut rejected = 0;
            for _ in 0..ROUNDS {
                match send(&mut svc, Req::Fail).await {
                    Err(e) if ErrorKind::of(&*e) == ErrorKind::CircuitOpen => rejected += 1,
                    Err(_) => {}
                    Ok(_) => unreachable!(),
                }
                tokio::task::yield_now().await;
            }
            rejected
        }));
    }
    let mut rejected = 0;
    for task in tasks {
        rejected += task.await.unwrap();
    }
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(
        trips.load(SeqCst),
        1,
        "one trip, however many racing failures"
    );
    let calls = backend.calls();
    assert!(calls >= 10, "it took at least 10 failures to trip");
    assert_eq!(calls + rejected, TASKS * ROUNDS);
    assert!(rejected > 0);
}

// ===== sharing =====

#[tokio::test(start_paused = true)]
async fn clones_of_a_layered_service_share_one_breaker() {
    let breaker = build(CircuitBreaker::builder().failure_threshold(2));
    let backend = Backend::default();
    let mut a = breaker.layer().layer(backend.clone());
    let mut b = a.clone();
    inner_error(send(&mut a, Req::Fail).await);
    inner_error(send(&mut b, Req::Fail).await);
    assert_eq!(breaker.state(), State::Open, "the clones counted together");
    rejection(send(&mut a, Req::Ok).await);
    rejection(send(&mut b, Req::Ok).await);
    assert_eq!(backend.calls(), 2);
    assert_eq!(a.breaker().state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn one_layer_building_two_services_shares_one_breaker() {
    let layer = build(CircuitBreaker::builder().failure_threshold(2)).layer();
    let (backend_a, backend_b) = (Backend::default(), Backend::default());
    let mut a = layer.layer(backend_a.clone());
    let mut b = layer.layer(backend_b.clone());
    inner_error(send(&mut a, Req::Fail).await);
    inner_error(send(&mut b, Req::Fail).await);
    assert_eq!(layer.breaker().state(), State::Open);
    rejection(send(&mut b, Req::Ok).await);
    assert_eq!(backend_b.calls(), 1);
    rejection(send(&mut a, Req::Ok).await);
    assert_eq!(backend_a.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn two_built_breakers_are_independent() {
    let builder = CircuitBreaker::builder().failure_threshold(1);
    let one = build(builder.clone());
    let two = build(builder);
    let backend = Backend::default();
    let mut a = one.layer().layer(backend.clone());
    let mut b = two.layer().layer(backend.clone());
    inner_error(send(&mut a, Req::Fail).await);
    assert_eq!(one.state(), State::Open);
    assert_eq!(two.state(), State::Closed);
    assert_eq!(send(&mut b, Req::Ok).await.unwrap(), "ok");
    rejection(send(&mut a, Req::Ok).await);
}
