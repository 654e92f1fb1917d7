-- Monthly recurring revenue (MRR) per customer at each month end, classified by its movement against the previous month.
-- grain: one row per customer_id and month, from the customer's first paid month through the month of the observation end, leaving out months in which the customer neither pays nor churns
with

parameters as (
    select
        $reporting_timezone::varchar as reporting_timezone,
        $observation_end::timestamptz as observation_end
),

subscriptions as (
    select
        subscription_id,
        customer_id,
        plan,
        started_at,
        trial_ends_at,
        ended_at,
        amount,
        billing_interval,
        interval_count
    from stg_subscriptions
),

-- The paid period is [paid_start, paid_end). A trial that never paid has an empty paid period,
-- so it can never be active at a month end.
paid_subscriptions as (
    select
        subscription_id,
        customer_id,
        plan,
        coalesce(trial_ends_at, started_at) as paid_start,
        coalesce(ended_at, 'infinity'::timestamptz) as paid_end,
        case
            when interval_count is null or interval_count < 1
                then error('stg_subscriptions.interval_count must be at least 1, got '
                    || coalesce(interval_count::varchar, 'NULL') || ' for subscription ' || subscription_id)
            when billing_interval = 'month' then amount / interval_count
            when billing_interval = 'year' then amount / 12 / interval_count
            when billing_interval = 'week' then amount * 52 / 12 / interval_count
            else error('stg_subscriptions.billing_interval must be month, year or week, got '
                || coalesce(billing_interval, 'NULL') || ' for subscription ' || subscription_id)
        end as subscription_mrr
    from subscriptions
),

month_bounds as (
    select
        (
            select min(date_trunc('month', timezone(parameters.reporting_timezone, paid_start)))
            from paid_subscriptions
        ) as first_month_start,
        date_trunc('month', timezone(parameters.reporting_timezone, parameters.observation_end)) as last_month_start
    from parameters
),

-- Months are generated from first-of-month local dates. month_end_at is the instant the next month
-- starts in the reporting time zone.
reporting_months as (
    select
        month_start::date as month,
        timezone(parameters.reporting_timezone, month_start + interval 1 month) as month_end_at,
        timezone(parameters.reporting_timezone, month_start + interval 1 month) <= parameters.observation_end
            as is_fully_observed
    from (
        select unnest(generate_series(first_month_start, last_month_start, interval 1 month)) as month_start
        from month_bounds
    ) as series
    cross join parameters
),

-- A subscription is active in a month when its paid period covers the last instant of the month,
-- i.e. it started before month_end_at and had not ended before month_end_at.
active_subscription_months as (
    select
        reporting_months.month,
        paid_subscriptions.customer_id,
        paid_subscriptions.subscription_id,
        paid_subscriptions.plan,
        paid_subscriptions.paid_start,
        paid_subscriptions.subscription_mrr
    from paid_subscriptions
    inner join reporting_months
        on paid_subscriptions.paid_start < reporting_months.month_end_at
        and paid_subscriptions.paid_end >= reporting_months.month_end_at
),

-- MRR is rounded to 6 decimals so that the same set of subscriptions gives the same value in every
-- month whatever order the sum runs in, and equal months classify as unchanged.
customer_month_revenue as (
    select
        month,
        customer_id,
        round(fsum(subscription_mrr), 6) as mrr
    from active_subscription_months
    group by month, customer_id
),

-- The customer's plan in a month is the plan of their largest active subscription by MRR. Ties go to
-- the most recently started subscription, then to the highest subscription_id.
customer_month_plan as (
    select
        month,
        customer_id,
        plan
    from active_subscription_months
    qualify row_number() over (
        partition by month, customer_id
        order by subscription_mrr desc, paid_start desc, subscription_id desc
    ) = 1
),

first_paid_months as (
    select
        customer_id,
        min(month) as first_paid_month
    from customer_month_revenue
    where mrr > 0
    group by customer_id
),

customer_months as (
    select
        reporting_months.month,
        reporting_months.is_fully_observed,
        first_paid_months.customer_id,
        first_paid_months.first_paid_month,
        coalesce(customer_month_revenue.mrr, 0) as mrr,
        case when customer_month_revenue.mrr > 0 then customer_month_plan.plan end as paying_plan
    from first_paid_months
    inner join reporting_months
        on reporting_months.month >= first_paid_months.first_paid_month
    left join customer_month_revenue
        on customer_month_revenue.customer_id = first_paid_months.customer_id
        and customer_month_revenue.month = reporting_months.month
    left join customer_month_plan
        on customer_month_plan.customer_id = first_paid_months.customer_id
        and customer_month_plan.month = reporting_months.month
),

customer_months_with_previous as (
    select
        *,
        coalesce(lag(mrr) over customer_timeline, 0) as previous_mrr,
        lag(paying_plan) over customer_timeline as previous_plan
    from customer_months
    window customer_timeline as (partition by customer_id order by month)
),

-- Tested in this order so that every movement is reachable. Every row after the first paid month
-- belongs to a customer who has paid before, so a paying month after a non-paying one is a reactivation.
classified_movements as (
    select
        *,
        case
            when mrr > 0 and month = first_paid_month then 'new'
            when mrr > 0 and previous_mrr <= 0 then 'reactivation'
            when mrr <= 0 and previous_mrr > 0 then 'churn'
            when mrr > previous_mrr then 'expansion'
            when mrr < previous_mrr then 'contraction'
            else 'unchanged'
        end as movement
    from customer_months_with_previous
)

select
    month,
    customer_id,
    -- Churn rows keep the plan the customer paid for in the previous month.
    coalesce(paying_plan, previous_plan) as plan,
    previous_plan,
    mrr,
    previous_mrr,
    round(mrr - previous_mrr, 6) as mrr_change,
    movement,
    case when movement = 'new' then mrr else 0 end as new_mrr,
    case when movement = 'reactivation' then mrr else 0 end as reactivation_mrr,
    case when movement = 'expansion' then round(mrr - previous_mrr, 6) else 0 end as expansion_mrr,
    case when movement = 'contraction' then round(previous_mrr - mrr, 6) else 0 end as contraction_mrr,
    case when movement = 'churn' then previous_mrr else 0 end as churn_mrr,
    first_paid_month,
    is_fully_observed
from classified_movements
where mrr > 0 or previous_mrr > 0
order by customer_id, month
