-- Ticket comments and status events at their latest version, without their text.
-- grain: one row per comment_id
with validated as (

    select * from validated_ticket_comments

),

latest_version as (

    -- A re-exported comment replaces the earlier row. Within a day, the later file and row win.
    select *
    from validated
    qualify row_number() over (
        partition by comment_id
        order by _partition_date desc, _source_file desc, _row_number desc
    ) = 1

)

-- The body stays in validated_ticket_comments, so this table's preview in the Dagster UI
-- shows no customer text. Join on arrival_date, source_file and source_row_number to read it.
select
    comment_id,
    ticket_id,
    author_role,
    is_public,
    event,
    created_at,
    _partition_date as arrival_date,
    _source_file as source_file,
    _row_number as source_row_number
from latest_version
order by ticket_id, created_at, comment_id
