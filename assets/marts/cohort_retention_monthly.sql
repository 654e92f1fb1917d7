-- Monthly customer retention by acquisition cohort, from paid subscriptions and from orders.
-- grain: one row per cohort_source, cohort_month and month_offset, with offsets from 0 through the month of the observation end
with

parameters as (
    select
        $reporting_timezone::varchar as reporting_timezone,
        $observation_end::timestamptz as observation_end
),

customer_revenue_months as (
    select
        customer_id,
        month,
        mrr
    from mrr_monthly
),

orders as (
    select
        customer_id,
        ordered_at,
        amount
    from stg_orders
),

observation_month as (
    select
        date_trunc('month', timezone(reporting_timezone, observation_end))::date as last_month
    from parameters
),

-- A customer is active in a month when they pay MRR at its end (mrr_monthly has no months after the
-- observation end).
subscription_activity as (
    select distinct
        'subscriptions' as cohort_source,
        customer_id,
        month as activity_month
    from customer_revenue_months
    where mrr > 0
),

-- Only orders with a positive amount and a known customer count. Returns and cancellations have a
-- negative amount, so they never start a cohort and never make a customer active.
order_activity as (
    select distinct
        'orders' as cohort_source,
        orders.customer_id,
        date_trunc('month', timezone(parameters.reporting_timezone, orders.ordered_at))::date as activity_month
    from orders
    cross join parameters
    where orders.amount > 0
        and orders.customer_id is not null
),

customer_activity as (
    select * from subscription_activity
    union all
    select order_activity.*
    from order_activity
    cross join observation_month
    where order_activity.activity_month <= observation_month.last_month
),

customer_cohorts as (
    select
        cohort_source,
        customer_id,
        min(activity_month) as cohort_month,
        max(activity_month) as last_active_month
    from customer_activity
    group by cohort_source, customer_id
),

cohort_sizes as (
    select
        cohort_source,
        cohort_month,
        count(*) as cohort_size
    from customer_cohorts
    group by cohort_source, cohort_month
),

cohort_months as (
    select
        cohort_source,
        cohort_month,
        cohort_size,
        month_start::date as month
    from (
        select
            cohort_sizes.*,
            unnest(generate_series(
                cohort_sizes.cohort_month::timestamp,
                observation_month.last_month::timestamp,
                interval 1 month
            )) as month_start
        from cohort_sizes
        cross join observation_month
    ) as series
),

retained_in_month as (
    select
        customer_cohorts.cohort_source,
        customer_cohorts.cohort_month,
        customer_activity.activity_month as month,
        count(*) as retained_customers
    from customer_cohorts
    inner join customer_activity
        on customer_activity.cohort_source = customer_cohorts.cohort_source
        and customer_activity.customer_id = customer_cohorts.customer_id
    group by customer_cohorts.cohort_source, customer_cohorts.cohort_month, customer_activity.activity_month
),

-- Unbounded retention counts a customer in every month up to their last active month.
retained_in_or_after_month as (
    select
        cohort_months.cohort_source,
        cohort_months.cohort_month,
        cohort_months.month,
        count(*) as retained_customers_unbounded
    from cohort_months
    inner join customer_cohorts
        on customer_cohorts.cohort_source = cohort_months.cohort_source
        and customer_cohorts.cohort_month = cohort_months.cohort_month
        and customer_cohorts.last_active_month >= cohort_months.month
    group by cohort_months.cohort_source, cohort_months.cohort_month, cohort_months.month
),

cohort_retention as (
    select
        cohort_months.cohort_source,
        cohort_months.cohort_month,
        (year(cohort_months.month) - year(cohort_months.cohort_month)) * 12
            + month(cohort_months.month) - month(cohort_months.cohort_month) as month_offset,
        cohort_months.cohort_size,
        coalesce(retained_in_month.retained_customers, 0) as retained_customers,
        coalesce(retained_in_or_after_month.retained_customers_unbounded, 0) as retained_customers_unbounded,
        -- The month is fully observed when it ended no later than the observation end.
        timezone(parameters.reporting_timezone, cohort_months.month::timestamp + interval 1 month)
            <= parameters.observation_end as is_fully_observed
    from cohort_months
    cross join parameters
    left join retained_in_month
        on retained_in_month.cohort_source = cohort_months.cohort_source
        and retained_in_month.cohort_month = cohort_months.cohort_month
        and retained_in_month.month = cohort_months.month
    left join retained_in_or_after_month
        on retained_in_or_after_month.cohort_source = cohort_months.cohort_source
        and retained_in_or_after_month.cohort_month = cohort_months.cohort_month
        and retained_in_or_after_month.month = cohort_months.month
)

select
    cohort_source,
    cohort_month,
    month_offset,
    cohort_size,
    retained_customers,
    retained_customers_unbounded,
    retained_customers / cohort_size as retention_rate,
    retained_customers_unbounded / cohort_size as retention_rate_unbounded,
    is_fully_observed
from cohort_retention
order by cohort_source, cohort_month, month_offset
