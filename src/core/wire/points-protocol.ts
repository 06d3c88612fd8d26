/**
 * The id and period bound of `/hyperspace/points/1.0.0`, apart from its frames (points.ts, which
 * re-exports them): a page registers the protocol and dates its checks with these, and loads the
 * frames' codec only when it first proves or checks.
 */
export const POINTS_PROTOCOL = '/hyperspace/points/1.0.0'
/** The longest period a prover answers for: a day at T = 90 s is 960 rounds. */
export const MAX_PERIOD_ROUNDS = 1024
