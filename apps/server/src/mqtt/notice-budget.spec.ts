import { NoticeBudget } from './notice-budget';

describe(NoticeBudget.name, () => {
  it('sends a few notices per second per device and reports how many it held back', () => {
    const budget = new NoticeBudget(2);
    expect([0, 1, 2, 3].map((ms) => budget.take('d1', ms))).toEqual([0, 0, null, null]);
    expect(budget.take('d2', 3)).toBe(0);
    expect(budget.take('d1', 1000)).toBe(2);
    expect(budget.take('d1', 1001)).toBe(0);
    budget.forget('d1');
    expect(budget.take('d1', 1002)).toBe(0);
  });
});
