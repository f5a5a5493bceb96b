resource "aws_db_instance" "this" {
  identifier              = var.name
  engine                  = "postgres"
  engine_version          = "16.3"
  instance_class          = var.instance_class
  allocated_storage       = 100
  db_subnet_group_name    = var.subnet_group
  publicly_accessible     = var.publicly_accessible
  backup_retention_period = var.backup_retention_days
  storage_encrypted       = true
  manage_master_user_password = true
  username                = "app"
}
