"""What a benchmark's sagas order: many customers in turn, each with points for all of theirs."""

from __future__ import annotations

from collections import Counter

from harness.bench.workload import CUSTOMERS, bench_order, bench_seed


def test_bench_orders_come_from_many_customers_in_turn() -> None:
    orders = [bench_order(f"b{i}", i) for i in range(3 * CUSTOMERS)]

    per_customer = Counter(order.customer_id for order in orders)
    assert len(per_customer) == CUSTOMERS
    assert set(per_customer.values()) == {3}
    assert orders[0].customer_id != orders[1].customer_id


def test_the_bench_seed_gives_every_customer_the_points_and_stock_of_all_their_orders() -> None:
    sagas = 250  # not a multiple of the customers: some have one order more
    seed = bench_seed(sagas)
    orders = [bench_order(f"b{i}", i) for i in range(sagas)]

    used = Counter[str]()
    for order in orders:
        used[order.customer_id] += order.points_to_use
    assert all(seed.points[name] >= points for name, points in used.items())
    widgets = sum(line.quantity for order in orders for line in order.items)
    assert seed.products["widget"].stock >= widgets
