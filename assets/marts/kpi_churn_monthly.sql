-- Monthly logo churn, MRR movements, gross revenue churn and net revenue retention, per plan and for all plans.
-- grain: one row per month and plan, with plan = '(all)' for the all-plans row; each plan runs from its first month with MRR through the month of the observation end
with

parameters as (
    select
        $reporting_timezone::varchar as reporting_timezone,
        $observation_end::timestamptz as observation_end
),

customer_movements as (
    select
        month,
        customer_id,
        plan,
        previous_plan,
        mrr,
        previous_mrr,
        movement,
        new_mrr,
        reactivation_mrr,
        expansion_mrr,
        contraction_mrr,
        churn_mrr
    from mrr_monthly
),

-- A customer who paid in the previous month is counted under their previous plan, so a plan's
-- churn, contraction and expansion all measure the customers it had at the start of the month.
-- New and reactivated customers had no previous plan and count under their current plan.
-- A missing plan name is reported as '(unknown)'.
plan_attributed_movements as (
    select
        month,
        coalesce(case when previous_mrr > 0 then previous_plan else plan end, '(unknown)') as plan,
        previous_mrr,
        movement,
        new_mrr,
        reactivation_mrr,
        expansion_mrr,
        contraction_mrr,
        churn_mrr
    from customer_movements
),

movements_by_plan_and_all as (
    select * from plan_attributed_movements
    union all
    select * replace ('(all)' as plan) from plan_attributed_movements
),

monthly_totals as (
    select
        month,
        plan,
        count_if(previous_mrr > 0)::bigint as customers_at_start,
        count_if(movement = 'churn')::bigint as customers_churned,
        round(fsum(previous_mrr), 6) as mrr_at_start,
        round(fsum(churn_mrr), 6) as churn_mrr,
        round(fsum(contraction_mrr), 6) as contraction_mrr,
        round(fsum(expansion_mrr), 6) as expansion_mrr,
        round(fsum(new_mrr), 6) as new_mrr,
        round(fsum(reactivation_mrr), 6) as reactivation_mrr
    from movements_by_plan_and_all
    group by month, plan
),

-- Months in which a plan has no rows (for example after all of its customers churned) are filled
-- with zeros up to the month of the observation end.
plan_month_bounds as (
    select
        monthly_totals.plan,
        min(monthly_totals.month)::timestamp as first_month_start,
        date_trunc('month', timezone(parameters.reporting_timezone, parameters.observation_end)) as last_month_start
    from monthly_totals
    cross join parameters
    group by monthly_totals.plan, parameters.reporting_timezone, parameters.observation_end
),

plan_months as (
    select
        series.plan,
        series.month_start::date as month,
        timezone(parameters.reporting_timezone, series.month_start + interval 1 month) <= parameters.observation_end
            as is_fully_observed
    from (
        select
            plan,
            unnest(generate_series(first_month_start, last_month_start, interval 1 month)) as month_start
        from plan_month_bounds
    ) as series
    cross join parameters
),

filled_totals as (
    select
        plan_months.month,
        plan_months.plan,
        coalesce(monthly_totals.customers_at_start, 0) as customers_at_start,
        coalesce(monthly_totals.customers_churned, 0) as customers_churned,
        coalesce(monthly_totals.mrr_at_start, 0) as mrr_at_start,
        coalesce(monthly_totals.churn_mrr, 0) as churn_mrr,
        coalesce(monthly_totals.contraction_mrr, 0) as contraction_mrr,
        coalesce(monthly_totals.expansion_mrr, 0) as expansion_mrr,
        coalesce(monthly_totals.new_mrr, 0) as new_mrr,
        coalesce(monthly_totals.reactivation_mrr, 0) as reactivation_mrr,
        plan_months.is_fully_observed
    from plan_months
    left join monthly_totals
        on monthly_totals.month = plan_months.month
        and monthly_totals.plan = plan_months.plan
)

select
    month,
    plan,
    customers_at_start,
    customers_churned,
    case when customers_at_start > 0 then customers_churned / customers_at_start end as logo_churn_rate,
    mrr_at_start,
    churn_mrr,
    contraction_mrr,
    expansion_mrr,
    new_mrr,
    reactivation_mrr,
    case when mrr_at_start > 0 then (churn_mrr + contraction_mrr) / mrr_at_start end as gross_revenue_churn_rate,
    case when mrr_at_start > 0 then (mrr_at_start - churn_mrr - contraction_mrr + expansion_mrr) / mrr_at_start end
        as net_revenue_retention,
    is_fully_observed
from filled_totals
order by month, plan
