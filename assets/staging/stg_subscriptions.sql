-- Subscriptions at their latest version, typed, in the reporting currency.
-- grain: one row per subscription_id
with validated as (

    select * from validated_subscriptions

),

latest_version as (

    -- The latest arrival wins; within a day, the newest updated_at, then the later file and row.
    select *
    from validated
    qualify row_number() over (
        partition by subscription_id
        order by _partition_date desc, updated_at desc nulls last, _source_file desc, _row_number desc
    ) = 1

)

select
    subscription_id,
    customer_id,
    plan,
    status,
    started_at,
    trial_ends_at,
    ended_at,
    amount,
    billing_interval,
    interval_count,
    currency,
    _partition_date as arrival_date
from latest_version
order by subscription_id
