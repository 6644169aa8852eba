"""One holder per checkout attempt, however many other attempts come and go meanwhile; no lock is kept after."""
import threading
import time


def test_an_attempts_lock_is_never_handed_out_twice_and_none_is_kept(app):
    kiosk = app.extensions["kiosk"]
    inside, most, entered = [0], [0], threading.Event()

    def pay(hold_for):
        with kiosk.lock("attempt-K"):
            inside[0] += 1
            most[0] = max(most[0], inside[0])
            entered.set()
            time.sleep(hold_for)
            inside[0] -= 1

    first = threading.Thread(target=pay, args=(0.3,))
    first.start()
    assert entered.wait(5)
    waiters = [threading.Thread(target=pay, args=(0.01,)) for _ in range(4)]  # double taps, waiting for the first
    for waiter in waiters:
        waiter.start()
    for n in range(3000):  # other customers' attempts come and go while they wait
        with kiosk.lock(f"other-{n}"):
            pass
    for thread in (first, *waiters):
        thread.join(10)
    assert most[0] == 1
    assert kiosk._locks == {}
