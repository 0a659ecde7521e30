-- Usernames are one name whatever their case (security review H19): an
-- invited outside party registering `ROOT` beside `root`, or an
-- administrator creating `Alice` beside `alice`, made two accounts that a
-- reader of a contract certificate, the audit log or an inbox cannot tell
-- apart. Logins stay exact; creation refuses a name equal to another up to
-- case (409), here and in the handlers (`ON CONFLICT DO NOTHING` takes any
-- unique index as the conflict).
DO $$
DECLARE
    dup text;
BEGIN
    SELECT string_agg(n, ', ') INTO dup
      FROM (SELECT lower(username) AS n FROM workflow.users GROUP BY 1 HAVING count(*) > 1) d;
    IF dup IS NOT NULL THEN
        RAISE EXCEPTION 'workflow.users has usernames that differ only in case: % (rename all but one of each, then upgrade)', dup;
    END IF;
END
$$;

CREATE UNIQUE INDEX users_username_lower_key ON workflow.users (lower(username));
