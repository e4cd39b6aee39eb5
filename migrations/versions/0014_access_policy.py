"""access policy: the bank_operations role; who placed a hold

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 14:00:00

* `bank_operations`: a bank-wide role (NACHA files, interest posting runs, statement runs, bank events) that, like
  the superuser, needs no organization (`users_org_required`).
* `holds.placed_by`: the user who placed a hold by hand. Null for the holds a payment's workflow places itself (a
  credit's funds, a debit's availability): those are released only by their workflow. Holds placed by hand before
  this migration are found by their idempotency key (`hold:<user id>:<key>`).

Downgrade refuses while a bank_operations user exists (it would break the restored constraint): disable and
delete them, or change their role, first.
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: Union[str, None] = "0013"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_OLD_ROLES = "'superuser','org_admin','operator','member','loan_officer','branch_manager','credit_committee'"
_NEW_ROLES = (
    "'superuser','bank_operations','org_admin','operator','member','loan_officer','branch_manager','credit_committee'"
)


def upgrade() -> None:
    op.drop_constraint("users_role_valid", "users", type_="check")
    op.create_check_constraint("users_role_valid", "users", f"role IN ({_NEW_ROLES})")
    op.drop_constraint("users_org_required", "users", type_="check")
    op.create_check_constraint(
        "users_org_required", "users", "role IN ('superuser','bank_operations') OR org_id IS NOT NULL"
    )
    op.add_column("holds", sa.Column("placed_by", sa.Uuid(), nullable=True))
    op.create_foreign_key("holds_placed_by_fkey", "holds", "users", ["placed_by"], ["id"])
    op.execute("""UPDATE holds h SET placed_by = u.id FROM users u
                  WHERE h.idempotency_key LIKE 'hold:%'
                    AND split_part(h.idempotency_key, ':', 2) = u.id::text""")


def downgrade() -> None:
    op.drop_constraint("holds_placed_by_fkey", "holds", type_="foreignkey")
    op.drop_column("holds", "placed_by")
    op.drop_constraint("users_org_required", "users", type_="check")
    op.create_check_constraint("users_org_required", "users", "role = 'superuser' OR org_id IS NOT NULL")
    op.drop_constraint("users_role_valid", "users", type_="check")
    op.create_check_constraint("users_role_valid", "users", f"role IN ({_OLD_ROLES})")
