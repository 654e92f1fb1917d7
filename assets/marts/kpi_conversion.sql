-- Trial-to-paid conversion per trial-start month and visit-to-order conversion per day, in the reporting time zone.
-- grain: one row per conversion_type and period_start, for periods with at least one trial or session up to the period of the observation end
with

parameters as (
    select
        $reporting_timezone::varchar as reporting_timezone,
        $observation_end::timestamptz as observation_end,
        $conversion_window_days::integer as conversion_window_days
),

subscriptions as (
    select
        subscription_id,
        started_at,
        trial_ends_at,
        ended_at
    from stg_subscriptions
),

sessions as (
    select
        session_id,
        started_at,
        converted
    from stg_sessions
),

-- A trial converts when all three hold:
--   * its paid period is not empty (it had not ended by the trial end),
--   * the trial end date is at most conversion_window_days calendar days after the trial start date,
--     both dates taken in the reporting time zone,
--   * the trial end is no later than the observation end, so the paid period has already begun.
trials as (
    select
        subscriptions.subscription_id,
        date_trunc('month', timezone(parameters.reporting_timezone, subscriptions.started_at))::date as trial_month,
        (subscriptions.ended_at is null or subscriptions.ended_at > subscriptions.trial_ends_at)
            and timezone(parameters.reporting_timezone, subscriptions.trial_ends_at)::date
                - timezone(parameters.reporting_timezone, subscriptions.started_at)::date
                <= parameters.conversion_window_days
            and subscriptions.trial_ends_at <= parameters.observation_end
            as is_converted
    from subscriptions
    cross join parameters
    where subscriptions.trial_ends_at is not null
),

-- A trial month is fully observed once the window of a trial started on its last day has closed,
-- i.e. the day conversion_window_days days after that day has ended.
trial_to_paid as (
    select
        'trial_to_paid' as conversion_type,
        trials.trial_month as period_start,
        'month' as period_grain,
        count(*) as eligible,
        count_if(trials.is_converted)::bigint as converted,
        timezone(
            parameters.reporting_timezone,
            (trials.trial_month + interval 1 month)::date + parameters.conversion_window_days
        ) <= parameters.observation_end as is_fully_observed
    from trials
    cross join parameters
    where trials.trial_month
        <= date_trunc('month', timezone(parameters.reporting_timezone, parameters.observation_end))::date
    group by trials.trial_month, parameters.reporting_timezone, parameters.observation_end,
        parameters.conversion_window_days
),

-- A session with a null converted flag counts as not converted.
visit_to_order as (
    select
        'visit_to_order' as conversion_type,
        timezone(parameters.reporting_timezone, sessions.started_at)::date as period_start,
        'day' as period_grain,
        count(*) as eligible,
        count_if(sessions.converted)::bigint as converted,
        timezone(
            parameters.reporting_timezone,
            timezone(parameters.reporting_timezone, sessions.started_at)::date + 1
        ) <= parameters.observation_end as is_fully_observed
    from sessions
    cross join parameters
    where timezone(parameters.reporting_timezone, sessions.started_at)::date
        <= timezone(parameters.reporting_timezone, parameters.observation_end)::date
    group by period_start, parameters.reporting_timezone, parameters.observation_end
)

select
    conversion_type,
    period_start,
    period_grain,
    eligible,
    converted,
    converted / eligible as conversion_rate,
    is_fully_observed
from (
    select * from trial_to_paid
    union all
    select * from visit_to_order
) as conversions
order by conversion_type, period_start
