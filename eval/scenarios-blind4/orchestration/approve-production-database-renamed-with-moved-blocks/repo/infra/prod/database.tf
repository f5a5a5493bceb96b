# "main" was the only database of this stack; the billing database joins it next sprint, so
# the resources get the name of what they hold. The moved blocks tell Terraform these are
# the same objects under a new address: the plan shows a move, nothing is destroyed or created.
moved {
  from = aws_db_subnet_group.main
  to   = aws_db_subnet_group.orders
}

moved {
  from = aws_db_instance.main
  to   = aws_db_instance.orders
}

resource "aws_db_subnet_group" "orders" {
  name       = "orders-prod"
  subnet_ids = module.vpc.private_subnets
}

resource "aws_db_instance" "orders" {
  identifier                   = "orders-prod"
  engine                       = "postgres"
  engine_version               = "16.3"
  instance_class               = "db.r6g.xlarge"
  allocated_storage            = 500
  max_allocated_storage        = 1000
  storage_type                 = "gp3"
  storage_encrypted            = true
  kms_key_id                   = aws_kms_key.rds.arn
  db_name                      = "orders"
  username                     = "orders_admin"
  manage_master_user_password  = true
  db_subnet_group_name         = aws_db_subnet_group.orders.name
  vpc_security_group_ids       = [aws_security_group.db.id]
  multi_az                     = true
  publicly_accessible          = false
  backup_retention_period      = 14
  deletion_protection          = true
  skip_final_snapshot          = false
  final_snapshot_identifier    = "orders-prod-final"
  performance_insights_enabled = true

  lifecycle {
    prevent_destroy = true
  }
}
